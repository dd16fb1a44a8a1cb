//! OCSP (RFC 6960, RFC 5019): requests read, responses laid out and signed.
//!
//! Requests are decoded strictly (`x509-ocsp` on `der`): anything that is not one DER
//! `OCSPRequest` is a `malformedRequest`. Responses are written here as DER: a
//! `ResponseData` signed by the delegated responder's key through [`Signer`], kept as
//! `tbs ‖ algorithm ‖ signature` (the *basic body*) so a pre-signed answer can be stored once and
//! wrapped with the responder's current certificate each time it is served.

use der::asn1::ObjectIdentifier;
use der::{Decode, Encode};

use crate::der::tlv;
use crate::keys::{SignatureScheme, Signer};

/// The client's side of OCSP (CertIDs and requests), which this responder reads.
pub use hallmark_client::ocsp::{build_request, cert_id, nonce_extension, CertIdHash};

use super::crl::{push_generalized, signature_algorithm};
use super::IssueError;

/// The largest request read (RFC 5019 requests are about 80 octets; signed ones a few KiB).
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// The most certificates asked about in one request.
pub const MAX_CERT_IDS: usize = 32;
/// The largest nonce extension value echoed (RFC 8954 asks for 1..32 octets; a little slack).
pub const MAX_NONCE_BYTES: usize = 128;

const ID_NONCE: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.3.6.1.5.5.7.48.1.2");

/// `OCSPResponseStatus`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponseStatus {
    Successful = 0,
    MalformedRequest = 1,
    InternalError = 2,
    TryLater = 3,
    SigRequired = 5,
    Unauthorized = 6,
}

/// Why a request cannot be answered with `successful`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    #[error("malformed OCSP request: {0}")]
    Malformed(&'static str),
}

/// One certificate asked about.
#[derive(Debug, Clone)]
pub struct RequestItem {
    /// The CertID exactly as the client encoded it (echoed in the answer).
    pub cert_id_der: Vec<u8>,
    pub hash: CertIdHash,
    pub name_hash: Vec<u8>,
    pub key_hash: Vec<u8>,
    /// The serial's INTEGER content octets.
    pub serial: Vec<u8>,
}

impl RequestItem {
    /// The serial as the store keys it (lower-case hex of the content octets).
    pub fn serial_hex(&self) -> String {
        hex::encode(&self.serial)
    }
}

/// A decoded request.
#[derive(Debug, Clone)]
pub struct Request {
    pub items: Vec<RequestItem>,
    /// The nonce extension, whole (DER `Extension`), to echo.
    pub nonce_extension: Option<Vec<u8>>,
}

/// Decodes an `OCSPRequest`.
pub fn parse_request(der: &[u8]) -> Result<Request, RequestError> {
    if der.is_empty() {
        return Err(RequestError::Malformed("empty request"));
    }
    if der.len() > MAX_REQUEST_BYTES {
        return Err(RequestError::Malformed("request too large"));
    }
    let req = x509_ocsp::OcspRequest::from_der(der)
        .map_err(|_| RequestError::Malformed("not a DER OCSPRequest"))?;
    let list = &req.tbs_request.request_list;
    if list.is_empty() {
        return Err(RequestError::Malformed("no certificate asked about"));
    }
    if list.len() > MAX_CERT_IDS {
        return Err(RequestError::Malformed(
            "too many certificates in one request",
        ));
    }
    let mut items = Vec::with_capacity(list.len());
    for r in list {
        let id = &r.req_cert;
        let hash = CertIdHash::from_oid(&id.hash_algorithm.oid)
            .ok_or(RequestError::Malformed("unsupported CertID hash algorithm"))?;
        let cert_id_der = id
            .to_der()
            .map_err(|_| RequestError::Malformed("CertID does not encode"))?;
        items.push(RequestItem {
            cert_id_der,
            hash,
            name_hash: id.issuer_name_hash.as_bytes().to_vec(),
            key_hash: id.issuer_key_hash.as_bytes().to_vec(),
            serial: id.serial_number.as_bytes().to_vec(),
        });
    }
    let mut nonce_extension = None;
    if let Some(exts) = &req.tbs_request.request_extensions {
        for e in exts.iter().filter(|e| e.extn_id == ID_NONCE) {
            let len = e.extn_value.as_bytes().len();
            if len == 0 || len > MAX_NONCE_BYTES {
                return Err(RequestError::Malformed("nonce length"));
            }
            nonce_extension = Some(
                e.to_der()
                    .map_err(|_| RequestError::Malformed("nonce does not encode"))?,
            );
        }
    }
    Ok(Request {
        items,
        nonce_extension,
    })
}

/// What a responder says about one certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertStatus {
    Good,
    /// Revocation time and CRLReason (`0`, unspecified, is written as no reason).
    Revoked {
        at: i64,
        reason: u8,
    },
    Unknown,
}

/// One `SingleResponse` to write.
#[derive(Debug, Clone)]
pub struct Single<'a> {
    pub cert_id_der: &'a [u8],
    pub status: CertStatus,
    pub this_update: i64,
    pub next_update: i64,
}

/// The signing half of a delegated responder.
pub struct ResponderKey<'a> {
    pub signer: &'a dyn Signer,
    pub scheme: SignatureScheme,
    /// SHA-1 of the responder's subjectPublicKey BIT STRING value (ResponderID byKey).
    pub key_hash: &'a [u8],
}

fn single_response(s: &Single<'_>) -> Vec<u8> {
    let mut body = Vec::with_capacity(s.cert_id_der.len() + 64);
    body.extend_from_slice(s.cert_id_der);
    match s.status {
        CertStatus::Good => body.extend_from_slice(&[0x80, 0x00]),
        CertStatus::Unknown => body.extend_from_slice(&[0x82, 0x00]),
        CertStatus::Revoked { at, reason } => {
            let mut info = Vec::with_capacity(24);
            push_generalized(&mut info, at);
            if reason != 0 {
                info.extend_from_slice(&[0xa0, 0x03, 0x0a, 0x01, reason]);
            }
            body.extend_from_slice(&tlv(0xa1, &info));
        }
    }
    push_generalized(&mut body, s.this_update);
    let mut next = Vec::with_capacity(17);
    push_generalized(&mut next, s.next_update);
    body.extend_from_slice(&tlv(0xa0, &next));
    tlv(0x30, &body)
}

/// Lays out and signs a `ResponseData`; returns the basic body (`tbs ‖ algorithm ‖ signature`).
pub fn sign_basic(
    key: &ResponderKey<'_>,
    produced_at: i64,
    singles: &[Single<'_>],
    nonce_extension: Option<&[u8]>,
) -> Result<Vec<u8>, IssueError> {
    let mut data = tlv(0xa2, &tlv(0x04, key.key_hash));
    push_generalized(&mut data, produced_at);
    let responses: Vec<u8> = singles.iter().flat_map(single_response).collect();
    data.extend_from_slice(&tlv(0x30, &responses));
    if let Some(n) = nonce_extension {
        data.extend_from_slice(&tlv(0xa1, &tlv(0x30, n)));
    }
    let tbs = tlv(0x30, &data);
    let signature = key.signer.sign(key.scheme, &tbs)?;
    let mut out = tbs;
    out.extend_from_slice(&signature_algorithm(key.scheme)?);
    let mut bits = Vec::with_capacity(signature.len() + 1);
    bits.push(0);
    bits.extend_from_slice(&signature);
    out.extend_from_slice(&tlv(0x03, &bits));
    Ok(out)
}

/// A whole `OCSPResponse` (status successful) from a basic body and the responder certificate,
/// written into one buffer (this is on every answer's path).
pub fn wrap_response(basic_body: &[u8], responder_cert: &[u8]) -> Vec<u8> {
    const BASIC_OID: [u8; 11] = [
        0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x01,
    ];
    let len_of = |n: usize| {
        let mut v = Vec::with_capacity(5);
        crate::der::push_len(&mut v, n);
        v
    };
    // certs [0] EXPLICIT SEQUENCE OF Certificate
    let certs_seq = responder_cert.len();
    let certs_seq_tlv = 1 + len_of(certs_seq).len() + certs_seq;
    let certs_tlv = 1 + len_of(certs_seq_tlv).len() + certs_seq_tlv;
    let basic = basic_body.len() + certs_tlv;
    let basic_tlv = 1 + len_of(basic).len() + basic;
    let octets_tlv = 1 + len_of(basic_tlv).len() + basic_tlv;
    let rb = BASIC_OID.len() + octets_tlv;
    let rb_tlv = 1 + len_of(rb).len() + rb;
    let explicit_tlv = 1 + len_of(rb_tlv).len() + rb_tlv;
    let outer = 3 + explicit_tlv;
    let mut out = Vec::with_capacity(outer + 6);
    let hdr = |out: &mut Vec<u8>, tag: u8, len: usize| {
        out.push(tag);
        crate::der::push_len(out, len);
    };
    hdr(&mut out, 0x30, outer);
    out.extend_from_slice(&[0x0a, 0x01, 0x00]);
    hdr(&mut out, 0xa0, rb_tlv);
    hdr(&mut out, 0x30, rb);
    out.extend_from_slice(&BASIC_OID);
    hdr(&mut out, 0x04, basic_tlv);
    hdr(&mut out, 0x30, basic);
    out.extend_from_slice(basic_body);
    hdr(&mut out, 0xa0, certs_seq_tlv);
    hdr(&mut out, 0x30, certs_seq);
    out.extend_from_slice(responder_cert);
    out
}

/// An `OCSPResponse` carrying only an error status.
pub fn error_response(status: ResponseStatus) -> Vec<u8> {
    vec![0x30, 0x03, 0x0a, 0x01, status as u8]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::der::oid;

    fn id(serial: &[u8]) -> Vec<u8> {
        cert_id(CertIdHash::Sha1, &[1; 20], &[2; 20], serial)
    }

    #[test]
    fn requests_parse() {
        let req = build_request(&[id(&[0x12, 0x34]), id(&[0x7f])], Some(&[9; 16]));
        let r = parse_request(&req).expect("parse");
        assert_eq!(r.items.len(), 2);
        assert_eq!(r.items[0].serial_hex(), "1234");
        assert_eq!(r.items[0].cert_id_der, id(&[0x12, 0x34]));
        assert_eq!(r.items[1].hash, CertIdHash::Sha1);
        assert_eq!(r.nonce_extension, Some(nonce_extension(&[9; 16])));
        let plain = parse_request(&build_request(&[id(&[1])], None)).expect("parse");
        assert!(plain.nonce_extension.is_none());
    }

    #[test]
    fn garbage_is_malformed() {
        let req = build_request(&[id(&[0x12, 0x34])], None);
        for bad in [
            &b""[..],
            &b"hello, responder"[..],
            &req[..req.len() - 1],
            &[0x30, 0x00][..],
        ] {
            assert!(parse_request(bad).is_err(), "{bad:02x?}");
        }
        let empty_list = tlv(0x30, &tlv(0x30, &tlv(0x30, &[])));
        assert!(parse_request(&empty_list).is_err());
        let many: Vec<Vec<u8>> = (0..=MAX_CERT_IDS as u8).map(|i| id(&[i + 1])).collect();
        assert!(parse_request(&build_request(&many, None)).is_err());
    }

    #[test]
    fn wrapped_responses_are_nested_tlvs() {
        for (body, cert) in [
            (vec![1u8; 10], vec![2u8; 20]),
            (vec![3u8; 300], vec![4u8; 70_000]),
        ] {
            let certs = tlv(0xa0, &tlv(0x30, &cert));
            let basic = tlv(0x30, &[body.clone(), certs].concat());
            let mut rb = oid("1.3.6.1.5.5.7.48.1.1");
            rb.extend_from_slice(&tlv(0x04, &basic));
            let mut whole = vec![0x0a, 0x01, 0x00];
            whole.extend_from_slice(&tlv(0xa0, &tlv(0x30, &rb)));
            assert_eq!(wrap_response(&body, &cert), tlv(0x30, &whole));
        }
    }

    #[test]
    fn error_responses_decode() {
        let der = error_response(ResponseStatus::Unauthorized);
        let r = x509_ocsp::OcspResponse::from_der(&der).expect("decode");
        assert_eq!(
            r.response_status,
            x509_ocsp::OcspResponseStatus::Unauthorized
        );
        assert!(r.response_bytes.is_none());
    }
}
