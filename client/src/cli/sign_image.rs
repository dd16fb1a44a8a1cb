//! `hallmark sign image`: container image signatures for an image in a registry, made from its
//! manifest digest (the image never leaves the registry): a containers/image simple-signing
//! signature (an OpenPGP signed message, written to a lookaside directory as skopeo and podman
//! read them) and a cosign-compatible signature (pushed as the `sha256-HEX.sig` tag). The
//! registry protocol is oci-client's; the server signs in format `image`, checking the digest
//! against the payload and recording the image.

use std::cell::RefCell;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use base64::Engine as _;
use clap::Args;
use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::manifest::{
    IMAGE_MANIFEST_LIST_MEDIA_TYPE, IMAGE_MANIFEST_MEDIA_TYPE, OCI_IMAGE_INDEX_MEDIA_TYPE,
    OCI_IMAGE_MEDIA_TYPE,
};
use oci_client::secrets::RegistryAuth;
use oci_client::Reference;

use super::sign::{post_signature, RequestArgs};
use super::sign_openpgp::{key_certificate, key_document, Service};
use crate::algorithm::HashAlg;
use crate::formats::names::{COSIGN_TYPE, SIMPLE_SIGNING_TYPE};
use crate::formats::openpgp as pgp;

/// cosign's payload media type, and its signature annotation.
const COSIGN_PAYLOAD: &str = "application/vnd.dev.cosign.simplesigning.v1+json";
const COSIGN_ANNOTATION: &str = "dev.cosignproject.cosign/signature";

#[derive(Args, Debug)]
pub struct ImageArgs {
    /// The image: REGISTRY/REPO@sha256:HEX, or REGISTRY/REPO:TAG (resolved to its digest
    /// first; the signature then names the tag).
    pub image: String,
    /// Write a simple-signing signature (OpenPGP; skopeo, podman) into this lookaside
    /// directory, as DIR/REPO@sha256=HEX/signature-N. The key needs an OpenPGP certificate.
    #[arg(long, value_name = "DIR")]
    pub lookaside: Option<PathBuf>,
    /// Do not push the cosign-compatible signature (`sha256-HEX.sig`).
    #[arg(long)]
    pub no_cosign: bool,
    /// Talk to the registry over plain http (a development registry on loopback).
    #[arg(long)]
    pub registry_plain_http: bool,
    /// A CA certificate (PEM) to trust for the registry's https, besides the system's.
    #[arg(long, value_name = "FILE")]
    pub registry_ca: Option<PathBuf>,
    /// Registry user for basic authentication (the password in --registry-password-env).
    #[arg(long, requires = "registry_password_env")]
    pub registry_user: Option<String>,
    /// The variable holding the registry password.
    #[arg(long, value_name = "VAR", requires = "registry_user")]
    pub registry_password_env: Option<String>,
    /// The variable holding a registry bearer token.
    #[arg(long, value_name = "VAR", conflicts_with = "registry_user")]
    pub registry_token_env: Option<String>,
    #[command(flatten)]
    pub request: RequestArgs,
}

/// An error with its causes (reqwest's own message hides the TLS or connection reason).
fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut next = e.source();
    while let Some(c) = next {
        let s = c.to_string();
        if !text.contains(&s) {
            text.push_str(": ");
            text.push_str(&s);
        }
        next = c.source();
    }
    text
}

fn sha256_hex(b: &[u8]) -> String {
    hex::encode(HashAlg::Sha256.digest(b))
}

/// The registry: client, credentials and a runtime for oci-client's async calls.
struct Registry {
    rt: tokio::runtime::Runtime,
    client: oci_client::Client,
    auth: RegistryAuth,
}

impl Registry {
    fn new(a: &ImageArgs) -> anyhow::Result<Registry> {
        let mut config = ClientConfig {
            protocol: if a.registry_plain_http {
                ClientProtocol::Http
            } else {
                ClientProtocol::Https
            },
            ..Default::default()
        };
        if let Some(ca) = &a.registry_ca {
            config.extra_root_certificates.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data: std::fs::read(ca).with_context(|| format!("reading {}", ca.display()))?,
            });
        }
        let var = |v: &str| std::env::var(v).map_err(|_| anyhow!("the variable {v} is not set"));
        let auth = match (
            &a.registry_user,
            &a.registry_password_env,
            &a.registry_token_env,
        ) {
            (Some(u), Some(p), _) => RegistryAuth::Basic(u.clone(), var(p)?),
            (_, _, Some(t)) => RegistryAuth::Bearer(var(t)?),
            _ => RegistryAuth::Anonymous,
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("starting the registry client")?;
        Ok(Registry {
            rt,
            client: oci_client::Client::new(config),
            auth,
        })
    }

    /// The manifest REF names and its digest (`sha256:HEX`, computed here from the bytes).
    fn manifest(&self, r: &Reference) -> anyhow::Result<Option<(Vec<u8>, String)>> {
        let types = [
            OCI_IMAGE_MEDIA_TYPE,
            OCI_IMAGE_INDEX_MEDIA_TYPE,
            IMAGE_MANIFEST_MEDIA_TYPE,
            IMAGE_MANIFEST_LIST_MEDIA_TYPE,
        ];
        match self
            .rt
            .block_on(self.client.pull_manifest_raw(r, &self.auth, &types))
        {
            Ok((bytes, _)) => {
                let digest = format!("sha256:{}", sha256_hex(&bytes));
                Ok(Some((bytes.to_vec(), digest)))
            }
            Err(e) => {
                use oci_client::errors::{OciDistributionError as E, OciErrorCode as C};
                let unknown = match &e {
                    E::ImageManifestNotFoundError(_) => true,
                    E::RegistryError { envelope, .. } => envelope
                        .errors
                        .iter()
                        .any(|x| matches!(x.code, C::ManifestUnknown | C::NameUnknown)),
                    _ => false,
                };
                if unknown {
                    Ok(None)
                } else {
                    Err(anyhow!(
                        "reading {} from the registry: {}",
                        r.whole(),
                        causes(&e)
                    ))
                }
            }
        }
    }

    fn push_blob(&self, r: &Reference, data: &[u8]) -> anyhow::Result<String> {
        let digest = format!("sha256:{}", sha256_hex(data));
        self.rt
            .block_on(self.client.push_blob(r, data.to_vec(), &digest))
            .map_err(|e| anyhow!("pushing a blob to {}: {}", r.whole(), causes(&e)))?;
        Ok(digest)
    }

    fn push_manifest(&self, r: &Reference, body: &[u8]) -> anyhow::Result<()> {
        let ct = hyper::header::HeaderValue::from_static(OCI_IMAGE_MEDIA_TYPE);
        self.rt
            .block_on(self.client.push_manifest_raw(r, body.to_vec(), ct))
            .map_err(|e| {
                anyhow!(
                    "pushing the signature manifest {}: {}",
                    r.whole(),
                    causes(&e)
                )
            })?;
        Ok(())
    }
}

/// The simple-signing signature's place in a lookaside directory: the first free
/// DIR/REPO@sha256=HEX/signature-N.
fn lookaside_path(dir: &Path, repo: &str, digest: &str) -> PathBuf {
    let base = dir.join(format!("{repo}@{}", digest.replacen(':', "=", 1)));
    let mut n = 1;
    loop {
        let p = base.join(format!("signature-{n}"));
        if !p.exists() {
            return p;
        }
        n += 1;
    }
}

pub fn cmd_sign_image(a: &ImageArgs) -> anyhow::Result<()> {
    if a.lookaside.is_none() && a.no_cosign {
        bail!("nothing to make: give --lookaside DIR (simple signing), or leave out --no-cosign");
    }
    let r: Reference = a.image.parse().map_err(|e| {
        anyhow!(
            "'{}' is not an image reference (REGISTRY/REPO:TAG or REGISTRY/REPO@sha256:HEX): {e}",
            a.image
        )
    })?;
    if let Some(d) = r.digest() {
        let ok = d
            .strip_prefix("sha256:")
            .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
        if !ok {
            bail!("the image digest must be sha256:HEX (64 digits): {d}");
        }
    }
    let registry = Registry::new(a)?;
    let Some((_, digest)) = registry.manifest(&r)? else {
        bail!(
            "the registry has no image {}; nothing was signed",
            r.whole()
        );
    };
    if let Some(want) = r.digest() {
        if !want.eq_ignore_ascii_case(&digest) {
            bail!(
                "the registry's manifest for {} has digest {digest}, not the one named; \
                 nothing was signed",
                r.whole()
            );
        }
    }
    let repo_name = format!("{}/{}", r.registry(), r.repository());
    // The identity the signature names: the tag when one was given (skopeo matches it exactly),
    // else the repository.
    let identity = match r.tag() {
        Some(t) => format!("{repo_name}:{t}"),
        None => repo_name.clone(),
    };
    let client = a.request.server.client()?;
    let doc = key_document(&client, &a.request.key)?;
    // What cannot be done is refused before anything is written: cosign verifies ECDSA, RSA
    // and Ed25519 keys, every kind the key stores hold.
    let alg = doc["algorithm"].as_str().unwrap_or_default();
    if !a.no_cosign && alg.parse::<crate::algorithm::KeyAlgorithm>().is_err() {
        bail!(
            "key '{}' is of a kind cosign cannot verify ({alg}); nothing was signed",
            a.request.key
        );
    }
    let mut meta = super::sign::metadata(Path::new(""), &a.request.meta)?;
    meta.insert("image".into(), format!("{repo_name}@{digest}").into());
    let now = crate::clock::Clock::now(&crate::clock::SystemClock);

    if let Some(dir) = &a.lookaside {
        let cert = key_certificate(&client, &a.request.key)?;
        let key = &cert.primary_key;
        let alg = pgp::key_algorithm(key)?;
        let hash = pgp::default_hash(alg);
        let payload = serde_json::json!({
            "critical": {
                "identity": {"docker-reference": identity},
                "image": {"docker-manifest-digest": digest},
                "type": SIMPLE_SIGNING_TYPE,
            },
            "optional": {"creator": format!("hallmark {}", env!("CARGO_PKG_VERSION")), "timestamp": now},
        })
        .to_string()
        .into_bytes();
        let at = u32::try_from(now).unwrap_or(u32::MAX);
        let trailer = pgp::binary_trailer(key, hash, at)?;
        let mut extra = serde_json::Map::new();
        extra.insert(
            "content".into(),
            base64::engine::general_purpose::STANDARD
                .encode(&payload)
                .into(),
        );
        extra.insert("openpgp_trailer".into(), hex::encode(&trailer).into());
        let service = Service {
            client: &client,
            key: &a.request.key,
            format: "image",
            extra,
            metadata: meta.clone(),
            timeout: a.request.timeout,
            poll: a.request.poll,
            record: RefCell::new(None),
        };
        let message = pgp::signed_message(key, hash, &payload, &service, at)?;
        let path = lookaside_path(dir, r.repository(), &digest);
        if let Some(p) = path.parent() {
            std::fs::create_dir_all(p).with_context(|| format!("creating {}", p.display()))?;
        }
        std::fs::write(&path, &message).with_context(|| format!("writing {}", path.display()))?;
        let id = service.record.borrow_mut().take().unwrap_or_default();
        eprintln!(
            "signed {identity} ({digest}) with key '{}', simple signing (record {id}): {}",
            a.request.key,
            path.display()
        );
    }

    if !a.no_cosign {
        let payload = serde_json::json!({
            "critical": {
                "identity": {"docker-reference": repo_name},
                "image": {"docker-manifest-digest": digest},
                "type": COSIGN_TYPE,
            },
            "optional": null,
        })
        .to_string()
        .into_bytes();
        let body = serde_json::json!({
            "key": a.request.key,
            "digest": sha256_hex(&payload),
            "digest_algorithm": "sha256",
            "format": "image",
            "content": base64::engine::general_purpose::STANDARD.encode(&payload),
            "metadata": meta,
        });
        let (v, sig) = post_signature(&client, &body, a.request.timeout, a.request.poll)?;
        let sig_b64 = base64::engine::general_purpose::STANDARD.encode(&sig);
        let hex = digest.trim_start_matches("sha256:");
        let sig_ref = Reference::with_tag(
            r.registry().to_string(),
            r.repository().to_string(),
            format!("sha256-{hex}.sig"),
        );
        // cosign appends to an existing signature manifest.
        let mut layers: Vec<serde_json::Value> = match registry.manifest(&sig_ref)? {
            Some((bytes, _)) => serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|m| m["layers"].as_array().cloned())
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let payload_digest = registry.push_blob(&sig_ref, &payload)?;
        layers.push(serde_json::json!({
            "mediaType": COSIGN_PAYLOAD,
            "size": payload.len(),
            "digest": payload_digest,
            "annotations": {COSIGN_ANNOTATION: sig_b64},
        }));
        let diff_ids: Vec<serde_json::Value> = layers.iter().map(|l| l["digest"].clone()).collect();
        let config = serde_json::json!({
            "architecture": "",
            "config": {},
            "created": "0001-01-01T00:00:00Z",
            "history": [{"created": "0001-01-01T00:00:00Z"}],
            "os": "",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        })
        .to_string()
        .into_bytes();
        let config_digest = registry.push_blob(&sig_ref, &config)?;
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_IMAGE_MEDIA_TYPE,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "size": config.len(),
                "digest": config_digest,
            },
            "layers": layers,
        })
        .to_string()
        .into_bytes();
        registry.push_manifest(&sig_ref, &manifest)?;
        eprintln!(
            "signed {repo_name} ({digest}) with key '{}', cosign (record {}): {}",
            a.request.key,
            v["id"],
            sig_ref.whole()
        );
    }
    Ok(())
}
