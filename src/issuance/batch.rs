//! Issuance in volume: the pipeline behind [`Issuance::issue_batch`] and the factory line.
//!
//! Requests arrive in chunks. Each chunk goes through three steps: *prepare* (policy — which
//! verifies the CSR's signature, the most expensive step — the certificate layout and the lint),
//! *record* (one transaction writes the chunk's intents), *sign and complete* (the CA signs, a
//! second transaction stores the certificates). Answers for a chunk are handed out only once its
//! certificates are durably stored, and chunks are answered in the order they came.
//!
//! Why a pipeline: the commits run on a writer thread while this thread prepares and signs the
//! next chunk, so the disk's sync time overlaps the crypto; and a chunk's preparation is spread
//! over the machine's cores, since CSR verification costs more than the CA's own signature. Its
//! signatures are spread over the cores too, or over as many threads as a PKCS#11 store's
//! `sign_threads` says (a network HSM signs in parallel, each signature a round trip). Up to
//! [`IN_FLIGHT`] chunks are between "arrived" and "answered" at a time, which bounds memory
//! however long the stream is.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::{intent_for, Issuance, Issued};
use crate::error::{Error, Result};
use crate::issuer::{self, CaHandle};
use crate::policy::{self, IssueRequest};
use crate::store::{Intent, Publisher, StoreError};

/// Requests per chunk when a whole batch is given at once.
const CHUNK: usize = 256;
/// Chunks between arrival and answer at any time.
const IN_FLIGHT: usize = 6;
/// Below this many requests a chunk is prepared on one thread (a thread costs more).
const PARALLEL_MIN: usize = 16;

/// What a chunk source hands the pipeline.
pub enum ChunkInput<T> {
    /// A chunk of requests and the caller's tag for it (handed back with its results).
    Chunk(T, Vec<IssueRequest>),
    /// Nothing ready yet (only answered when the pipeline asked not to wait).
    NotYet,
    /// No more chunks.
    End,
}

/// A request between policy and the record.
struct Pending {
    /// Its position in its chunk.
    idx: usize,
    intent: Intent,
    prepared: issuer::Prepared,
    ca: Arc<CaHandle>,
}

/// Work for the writer thread.
enum WriterJob {
    Record(Vec<Intent>),
    Complete(Vec<(String, Vec<u8>)>, String),
}

/// Where a chunk is.
enum Stage {
    /// Intents sent to the writer.
    Recording(Vec<Pending>),
    /// Signed; certificates sent to the writer.
    Completing(Vec<(Pending, Vec<u8>)>),
    /// Every request has its result.
    Done,
}

struct InFlight<T> {
    seq: u64,
    tag: Option<T>,
    results: Vec<Option<Result<Issued>>>,
    stage: Stage,
}

/// The writer's answer to one job: per-intent outcomes of a record (empty for a completion), or
/// the error that failed the whole transaction.
type WriterAnswer = std::result::Result<Vec<std::result::Result<i64, StoreError>>, StoreError>;

/// How a batch of `n` requests is cut into chunks: [`CHUNK`]s, except that the last ones
/// shrink (a half, then two quarters of a chunk). The last chunk's signing and completion run
/// with nothing beside them — the pipeline drains — so a small last chunk leaves the cores idle
/// for less time.
fn chunk_sizes(n: usize) -> Vec<usize> {
    // Built from the end: two quarter chunks, a half chunk, then whole chunks.
    let mut sizes = Vec::new();
    let mut left = n;
    let steps = [CHUNK / 4, CHUNK / 4, CHUNK / 2];
    let mut i = 0;
    while left > 0 {
        let size = steps.get(i).copied().unwrap_or(CHUNK);
        let take = left.min(size);
        sizes.push(take);
        left -= take;
        i += 1;
    }
    sizes.reverse();
    sizes
}

fn fail(results: &mut [Option<Result<Issued>>], idxs: impl Iterator<Item = usize>, why: &str) {
    for i in idxs {
        results[i] = Some(Err(Error::Store(StoreError::WriteFailed(why.to_string()))));
    }
}

impl Issuance {
    /// Issues many certificates with grouped commits (group commit, as the factory line needs).
    ///
    /// Each request gets its own result, in order; a refused one does not stop the others, and
    /// a result exists only once its certificate is durably stored.
    pub fn issue_batch(&self, reqs: &[IssueRequest]) -> Vec<Result<Issued>> {
        self.issue_batch_for(reqs, None)
    }

    /// [`Issuance::issue_batch`] for a factory station: its certificates record the station.
    pub fn issue_batch_for(
        &self,
        reqs: &[IssueRequest],
        station: Option<&str>,
    ) -> Vec<Result<Issued>> {
        let mut chunks = chunk_sizes(reqs.len()).into_iter().scan(0, |at, n| {
            let c = &reqs[*at..*at + n];
            *at += n;
            Some(c)
        });
        let mut out: Vec<Result<Issued>> = Vec::with_capacity(reqs.len());
        self.issue_stream(
            station,
            |_| match chunks.next() {
                Some(c) => ChunkInput::Chunk((), c.to_vec()),
                None => ChunkInput::End,
            },
            |(), results| {
                out.extend(results);
                true
            },
        );
        out
    }

    /// The pipeline over a stream of chunks. `next(wait)` gives the next chunk (blocking only
    /// when `wait` is true, which the pipeline asks only when it has nothing else to do);
    /// `done(tag, results)` receives each chunk's results, in chunk order, once they are durable.
    /// When `done` returns false (the receiver went away) no new chunk is taken, but the chunks
    /// already recorded are still signed and completed, so no intent is left behind.
    pub fn issue_stream<T>(
        &self,
        station: Option<&str>,
        mut next: impl FnMut(bool) -> ChunkInput<T>,
        mut done: impl FnMut(T, Vec<Result<Issued>>) -> bool,
    ) {
        let store = &self.store;
        let mut publishers: HashMap<String, Publisher> = HashMap::new();
        let mut chains: HashMap<String, Vec<Vec<u8>>> = HashMap::new();
        std::thread::scope(|scope| {
            let (jobs_tx, jobs_rx) = std::sync::mpsc::sync_channel::<(u64, WriterJob)>(IN_FLIGHT);
            let (answers_tx, answers_rx) = std::sync::mpsc::channel::<(u64, WriterAnswer)>();
            scope.spawn(move || {
                for (seq, job) in jobs_rx {
                    let r = match job {
                        WriterJob::Record(intents) => store.record_intents(&intents),
                        WriterJob::Complete(done, actor) => {
                            let refs: Vec<(&str, &[u8])> = done
                                .iter()
                                .map(|(s, d)| (s.as_str(), d.as_slice()))
                                .collect();
                            store.complete_issuances(&refs, &actor).map(|()| Vec::new())
                        }
                    };
                    if answers_tx.send((seq, r)).is_err() {
                        break;
                    }
                }
            });
            let mut flight: VecDeque<InFlight<T>> = VecDeque::new();
            let mut seq: u64 = 0;
            let mut ended = false;
            let mut receiving = true;
            let mut writer_alive = true;
            loop {
                // Answer finished chunks, in order.
                while flight
                    .front()
                    .is_some_and(|f| matches!(f.stage, Stage::Done))
                {
                    if let Some(mut f) = flight.pop_front() {
                        let results = f
                            .results
                            .drain(..)
                            .map(|r| {
                                r.unwrap_or_else(|| {
                                    Err(Error::Internal("the request was not processed".into()))
                                })
                            })
                            .collect();
                        if let Some(tag) = f.tag.take() {
                            if receiving && !done(tag, results) {
                                receiving = false;
                            }
                        }
                    }
                }
                if !receiving {
                    ended = true;
                }
                // Take a new chunk while there is room.
                if !ended && flight.len() < IN_FLIGHT {
                    match next(flight.is_empty()) {
                        ChunkInput::Chunk(tag, reqs) => {
                            seq += 1;
                            let mut results: Vec<Option<Result<Issued>>> =
                                (0..reqs.len()).map(|_| None).collect();
                            let items =
                                self.prepare_chunk(&reqs, station, &mut publishers, &mut results);
                            let stage = if items.is_empty() {
                                Stage::Done
                            } else {
                                let intents = items.iter().map(|p| p.intent.clone()).collect();
                                if writer_alive
                                    && jobs_tx.send((seq, WriterJob::Record(intents))).is_ok()
                                {
                                    Stage::Recording(items)
                                } else {
                                    writer_alive = false;
                                    fail(
                                        &mut results,
                                        items.iter().map(|p| p.idx),
                                        "the database writer stopped",
                                    );
                                    Stage::Done
                                }
                            };
                            flight.push_back(InFlight {
                                seq,
                                tag: Some(tag),
                                results,
                                stage,
                            });
                            continue;
                        }
                        ChunkInput::NotYet => {}
                        ChunkInput::End => {
                            ended = true;
                            continue;
                        }
                    }
                }
                if flight.is_empty() {
                    if ended {
                        break;
                    }
                    continue;
                }
                // The front chunk waits on the writer: take its next answer.
                let (answer_seq, answer) = match answers_rx.recv() {
                    Ok(a) => a,
                    Err(_) => {
                        writer_alive = false;
                        for f in flight.iter_mut() {
                            let idxs: Vec<usize> = match &f.stage {
                                Stage::Recording(items) => items.iter().map(|p| p.idx).collect(),
                                Stage::Completing(signed) => {
                                    signed.iter().map(|(p, _)| p.idx).collect()
                                }
                                Stage::Done => Vec::new(),
                            };
                            fail(
                                &mut f.results,
                                idxs.into_iter(),
                                "the database writer stopped",
                            );
                            f.stage = Stage::Done;
                        }
                        continue;
                    }
                };
                let Some(f) = flight.iter_mut().find(|f| f.seq == answer_seq) else {
                    continue;
                };
                match std::mem::replace(&mut f.stage, Stage::Done) {
                    Stage::Recording(items) => {
                        let outcomes = match answer {
                            Ok(o) => o,
                            Err(e) => {
                                fail(&mut f.results, items.iter().map(|p| p.idx), &e.to_string());
                                continue;
                            }
                        };
                        let signed = self.sign_recorded(items, outcomes, &mut f.results);
                        if signed.is_empty() {
                            continue;
                        }
                        let certs: Vec<(String, Vec<u8>)> = signed
                            .iter()
                            .map(|(p, d)| (p.prepared.serial.clone(), d.clone()))
                            .collect();
                        let actor = signed
                            .first()
                            .map(|(p, _)| p.intent.requester.clone())
                            .unwrap_or_default();
                        if writer_alive
                            && jobs_tx
                                .send((f.seq, WriterJob::Complete(certs, actor)))
                                .is_ok()
                        {
                            f.stage = Stage::Completing(signed);
                        } else {
                            writer_alive = false;
                            fail(
                                &mut f.results,
                                signed.iter().map(|(p, _)| p.idx),
                                "the database writer stopped",
                            );
                        }
                    }
                    Stage::Completing(signed) => match answer {
                        Ok(_) => {
                            for (p, der) in signed {
                                self.metrics.count_issued(&p.intent.profile, 1);
                                let ca = p.ca.record.name.clone();
                                let chain = match chains.get(&ca) {
                                    Some(c) => Ok(c.clone()),
                                    None => self.keyring.chain(&ca).inspect(|c| {
                                        chains.insert(ca.clone(), c.clone());
                                    }),
                                };
                                f.results[p.idx] = Some(chain.map(|chain| Issued {
                                    serial: p.prepared.serial.clone(),
                                    cert_der: der,
                                    chain,
                                }));
                            }
                        }
                        Err(e) => fail(
                            &mut f.results,
                            signed.iter().map(|(p, _)| p.idx),
                            &e.to_string(),
                        ),
                    },
                    Stage::Done => {}
                }
            }
            drop(jobs_tx);
        });
    }

    /// How many signatures a batch asks of key store `store` at once: its `sign_threads`
    /// (PKCS#11), else one per core.
    fn sign_threads(&self, store: &str) -> usize {
        match self.key_stores.get(store) {
            Some(crate::config::KeyStoreConfig::Pkcs11 {
                sign_threads: Some(t),
                ..
            }) => usize::from(*t),
            _ => cores(),
        }
    }

    /// Signs the recorded intents of a chunk; a refused record or a failed signature gets its
    /// error (and a failed signature's intent is abandoned).
    fn sign_recorded(
        &self,
        items: Vec<Pending>,
        outcomes: Vec<std::result::Result<i64, StoreError>>,
        results: &mut [Option<Result<Issued>>],
    ) -> Vec<(Pending, Vec<u8>)> {
        let mut outcomes = outcomes.into_iter();
        let mut to_sign = Vec::with_capacity(items.len());
        for p in items {
            match outcomes.next() {
                Some(Ok(_)) => to_sign.push(p),
                Some(Err(e)) => results[p.idx] = Some(Err(e.into())),
                None => fail(results, [p.idx].into_iter(), "no record outcome"),
            }
        }
        let idxs: Vec<usize> = to_sign.iter().map(|p| p.idx).collect();
        // As many signatures at once as the CA's key store takes (its `sign_threads`).
        let threads = to_sign
            .first()
            .map(|p| self.sign_threads(&p.ca.record.key_store))
            .unwrap_or_else(cores);
        let signatures = par_map_n(to_sign, threads, |p| {
            let started = std::time::Instant::now();
            let signature = issuer::sign(&p.prepared, &p.ca);
            self.metrics.observe_sign(started.elapsed());
            (p, signature)
        });
        let mut signed = Vec::with_capacity(signatures.len());
        for (idx, r) in idxs.into_iter().zip(signatures) {
            match r {
                Some((p, Ok(der))) => signed.push((p, der)),
                Some((p, Err(e))) => {
                    let _ = self.store.abandon_intent(
                        &p.prepared.serial,
                        &e.to_string(),
                        &p.intent.requester,
                    );
                    results[p.idx] = Some(Err(e.into()));
                }
                // The signing thread panicked: the intent stays recorded (a resubmission or
                // the recovery path finishes it); this request is answered as not processed.
                None => results[idx] = None,
            }
        }
        signed
    }

    /// Policy and preparation for one chunk, spread over the cores; refusals go straight into
    /// `results`.
    fn prepare_chunk(
        &self,
        chunk: &[IssueRequest],
        station: Option<&str>,
        publishers: &mut HashMap<String, Publisher>,
        results: &mut [Option<Result<Issued>>],
    ) -> Vec<Pending> {
        // Publisher records first (a store read per publisher not seen yet), on this thread.
        let mut records: Vec<Option<Publisher>> = Vec::with_capacity(chunk.len());
        for (j, req) in chunk.iter().enumerate() {
            let record = match publishers.get(&req.publisher) {
                Some(p) => Ok(p.clone()),
                None => policy::lookup_publisher(&self.profiles, &*self.store, req).inspect(|p| {
                    publishers.insert(p.id.clone(), p.clone());
                }),
            };
            match record {
                Ok(p) => records.push(Some(p)),
                Err(e) => {
                    results[j] = Some(Err(e.into()));
                    records.push(None);
                }
            }
        }
        let urls = &self.urls;
        let at = self.clock.now();
        let prepare_one = |j: usize, publisher: Publisher| -> Result<Pending> {
            let req = &chunk[j];
            let approved = policy::approve_for(&self.profiles, publisher, req)?;
            let ca = self.keyring.ca(&approved.profile().issuer)?;
            let prepared = issuer::prepare_leaf(
                &approved,
                &ca,
                urls,
                &self.policy_oid,
                at,
                issuer::random_serial(self.clock.now_millis()),
            )?;
            let intent = intent_for(&approved, &prepared, &ca, None, station)?;
            Ok(Pending {
                idx: j,
                intent,
                prepared,
                ca,
            })
        };
        // None: the publisher lookup already answered this request.
        let one = |j: usize| -> Option<Result<Pending>> {
            let publisher = records[j].clone()?;
            Some(prepare_one(j, publisher))
        };
        let n = chunk.len();
        let parts = par_map((0..n).collect(), |j| (j, one(j)));
        let mut out = Vec::with_capacity(n);
        // None: the lookup already answered, or a preparing thread panicked (then the request
        // is answered "not processed", never issued).
        for (j, r) in parts.into_iter().flatten() {
            match r {
                Some(Ok(p)) => out.push(p),
                Some(Err(e)) => results[j] = Some(Err(e)),
                None => {}
            }
        }
        out
    }
}

/// Applies `f` to every item, spread over the machine's cores, results in the items' order.
/// The threads take items one at a time from a shared counter, so a thread that the scheduler
/// sets aside (the writer thread shares the cores) never leaves a fixed share undone while the
/// others wait. An item whose thread panicked gives `None`.
fn par_map<T: Send, R: Send>(items: Vec<T>, f: impl Fn(T) -> R + Sync) -> Vec<Option<R>> {
    par_map_n(items, cores(), f)
}

/// The machine's cores (at most 8): how many threads CPU-bound work is spread over.
fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|t| t.get())
        .unwrap_or(1)
        .clamp(1, 8)
}

/// [`par_map`] over `threads` threads (for work that waits, like a network HSM's signatures).
fn par_map_n<T: Send, R: Send>(
    items: Vec<T>,
    threads: usize,
    f: impl Fn(T) -> R + Sync,
) -> Vec<Option<R>> {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;
    let n = items.len();
    let threads = threads.clamp(1, n.max(1));
    if threads == 1 || n < PARALLEL_MIN {
        return items.into_iter().map(|x| Some(f(x))).collect();
    }
    let inputs: Vec<Mutex<Option<T>>> = items.into_iter().map(|x| Mutex::new(Some(x))).collect();
    let outputs: Vec<Mutex<Option<R>>> = (0..n).map(|_| Mutex::new(None)).collect();
    let next = AtomicUsize::new(0);
    let work = || loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            break;
        }
        let item = inputs[i].lock().ok().and_then(|mut x| x.take());
        if let Some(item) = item {
            let r = f(item);
            if let Ok(mut slot) = outputs[i].lock() {
                *slot = Some(r);
            }
        }
    };
    std::thread::scope(|s| {
        let work = &work;
        let helpers: Vec<_> = (1..threads).map(|_| s.spawn(work)).collect();
        work();
        for h in helpers {
            // A panicked helper leaves its current item's slot empty: that item is `None`.
            let _ = h.join();
        }
    });
    outputs
        .into_iter()
        .map(|m| m.into_inner().ok().flatten())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_the_batch_and_shrink_at_the_end() {
        for n in [0, 1, 63, 64, 65, 300, 512, 513, 1024, 1025, 100_000] {
            let sizes = chunk_sizes(n);
            assert_eq!(sizes.iter().sum::<usize>(), n, "{n}: {sizes:?}");
            assert!(sizes.iter().all(|&s| s > 0 && s <= CHUNK), "{n}: {sizes:?}");
        }
        assert_eq!(chunk_sizes(1024), vec![256, 256, 256, 128, 64, 64]);
    }
}
