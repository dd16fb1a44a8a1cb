//! Answering time-stamp queries (RFC 3161): a token per query, with a fresh serial, audited; refusals are TimeStampResp rejections.

use super::*;

impl TsaService {
    /// Answers one DER `TimeStampReq` with a DER `TimeStampResp` (a rejection for a bad query or
    /// when the TSA cannot sign: never an error).
    pub fn respond(&self, query: &[u8]) -> Vec<u8> {
        let req = match tsp::parse_request(query) {
            Ok(r) => r,
            Err(refusal) => return tsp::rejection(&refusal),
        };
        let policy = self.policy_oid.as_str();
        if let Some(p) = &req.policy_der {
            if *p != issuer::extensions::oid(policy) {
                return tsp::rejection(&tsp::Refusal {
                    fail: tsp::FailInfo::UnacceptedPolicy,
                    reason: format!("this TSA only issues under policy {policy}"),
                });
            }
        }
        match self.stamp(&req, policy) {
            Ok(token) => tsp::granted(&token),
            Err(e) => {
                tracing::error!("TSA: {e}");
                tsp::rejection(&tsp::Refusal {
                    fail: tsp::FailInfo::SystemFailure,
                    reason: "the time-stamp authority is not available".into(),
                })
            }
        }
    }

    /// Time-stamps a digest in this process (no HTTP): the signing service's `timestamp: true`.
    /// Returns the DER TimeStampToken (a ContentInfo) with the TSA certificate and its chain, under
    /// the CA's policy, recorded like any token `POST /tsa` hands out.
    pub fn stamp_digest(&self, hash: crate::keys::HashAlg, digest: &[u8]) -> Result<Vec<u8>> {
        let hash_oid = match hash {
            crate::keys::HashAlg::Sha256 => "2.16.840.1.101.3.4.2.1",
            crate::keys::HashAlg::Sha384 => "2.16.840.1.101.3.4.2.2",
            crate::keys::HashAlg::Sha512 => "2.16.840.1.101.3.4.2.3",
        };
        if digest.len() != hash.output_len() {
            return Err(Error::Internal(format!(
                "a {hash:?} imprint is {} bytes, not {}",
                hash.output_len(),
                digest.len()
            )));
        }
        let alg = crate::der::tlv(0x30, &issuer::extensions::oid(hash_oid));
        let imprint = crate::der::tlv(0x30, &[alg, crate::der::tlv(0x04, digest)].concat());
        let req = tsp::TimeStampReq {
            hash,
            imprint_der: imprint,
            hashed_message: digest.to_vec(),
            policy_der: None,
            nonce_der: None,
            cert_req: true,
        };
        self.stamp(&req, self.policy_oid.as_str())
    }

    fn stamp(&self, req: &tsp::TimeStampReq, policy: &str) -> Result<Vec<u8>> {
        let tsa = self.tsa()?;
        // A token under a revoked or expired TSA certificate would be worthless to a verifier and
        // could be back-dated proof from a compromised key: refused (POST /tsa: systemFailure).
        if self.revocations.get_revocation(&tsa.serial)?.is_some() {
            return Err(Error::Conflict(format!(
                "the TSA certificate {} is revoked; run `hallmark tsa init` for a new one",
                tsa.serial
            )));
        }
        if tsa.not_after < self.clock.now() {
            return Err(Error::Conflict(format!(
                "the TSA certificate {} has expired; run `hallmark tsa init` for a new one",
                tsa.serial
            )));
        }
        let serial = issuer::random_serial(self.clock.now_millis());
        let gen_time = self.clock.now();
        let scheme = tsa.signer.algorithm().default_scheme();
        let token = tsp::build_token(
            req,
            &tsp::TokenInput {
                policy,
                serial: &serial,
                gen_time,
                accuracy_seconds: 1,
                tsa_cert: &tsa.cert_der,
                chain: &tsa.chain,
                signer: tsa.signer.as_ref(),
                scheme,
            },
        )?;
        // The token is given out only once its serial is durably recorded.
        let detail = format!(
            "{:?} {} at {gen_time}",
            req.hash,
            hex::encode(&req.hashed_message)
        );
        self.audit
            .audit("tsa.timestamp", &hex::encode(serial), Some(&detail), "tsa")?;
        Ok(token)
    }
}
