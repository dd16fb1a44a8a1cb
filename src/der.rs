//! Minimal DER plumbing: splitting a signed structure and signing its to-be-signed part again.
//!
//! Certificates, CSRs and CRLs are all `SEQUENCE { tbs, signatureAlgorithm, signature BIT STRING }`.
//! rcgen lays out the `tbs`; hallmark lints it, records it and only then signs exactly those bytes.

use crate::keys::{KeyError, SignatureScheme, Signer};

pub use hallmark_client::der::{push_len, read_tlv, seq, set_of, tlv, DerError, Tlv};

/// The parts of a signed structure.
pub struct Signed<'a> {
    pub tbs: &'a [u8],
    pub algorithm: &'a [u8],
}

/// Splits `SEQUENCE { tbs, algorithm, signature }`.
pub fn split_signed(der: &[u8]) -> Result<Signed<'_>, DerError> {
    let outer = read_tlv(der)?;
    if outer.tag != 0x30 || !outer.rest.is_empty() {
        return Err(DerError("not a single SEQUENCE"));
    }
    let tbs = read_tlv(outer.contents)?;
    let alg = read_tlv(tbs.rest)?;
    let sig = read_tlv(alg.rest)?;
    if tbs.tag != 0x30 || alg.tag != 0x30 || sig.tag != 0x03 || !sig.rest.is_empty() {
        return Err(DerError("not a signed structure"));
    }
    Ok(Signed {
        tbs: tbs.whole,
        algorithm: alg.whole,
    })
}

/// The `signature` AlgorithmIdentifier inside a TBSCertificate (after the optional version and
/// the serial): the outer algorithm of the certificate must repeat it.
pub fn tbs_signature_algorithm(tbs: &[u8]) -> Result<&[u8], DerError> {
    let outer = read_tlv(tbs)?;
    if outer.tag != 0x30 {
        return Err(DerError("not a TBSCertificate"));
    }
    let mut next = read_tlv(outer.contents)?;
    if next.tag == 0xa0 {
        next = read_tlv(next.rest)?;
    }
    if next.tag != 0x02 {
        return Err(DerError("TBSCertificate without a serial"));
    }
    let alg = read_tlv(next.rest)?;
    if alg.tag != 0x30 {
        return Err(DerError("TBSCertificate without a signature algorithm"));
    }
    Ok(alg.whole)
}

/// Assembles a signed structure from its parts.
pub fn assemble(tbs: &[u8], algorithm: &[u8], signature: &[u8]) -> Vec<u8> {
    let mut bits = Vec::with_capacity(signature.len() + 1);
    bits.push(0);
    bits.extend_from_slice(signature);
    let bitstring = tlv(0x03, &bits);
    let mut body = Vec::with_capacity(tbs.len() + algorithm.len() + bitstring.len());
    body.extend_from_slice(tbs);
    body.extend_from_slice(algorithm);
    body.extend_from_slice(&bitstring);
    tlv(0x30, &body)
}

/// Signs the to-be-signed part of a template made with a [`crate::keys::TemplateKey`].
#[derive(Debug, thiserror::Error)]
pub enum ResignError {
    #[error(transparent)]
    Der(#[from] DerError),
    #[error(transparent)]
    Key(#[from] KeyError),
}

pub fn resign(
    template: &[u8],
    signer: &dyn Signer,
    scheme: SignatureScheme,
) -> Result<Vec<u8>, ResignError> {
    let parts = split_signed(template)?;
    let sig = signer.sign(scheme, parts.tbs)?;
    Ok(assemble(parts.tbs, parts.algorithm, &sig))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_round_trip() {
        for len in [0usize, 1, 127, 128, 255, 256, 65535, 65536, 1 << 20] {
            let v = vec![0u8; len];
            let enc = tlv(0x04, &v);
            let t = read_tlv(&enc).unwrap();
            assert_eq!(
                (t.tag, t.whole.len(), t.contents.len(), t.rest.len()),
                (4, enc.len(), len, 0)
            );
        }
    }

    #[test]
    fn truncated_is_an_error() {
        let enc = tlv(0x30, &[1, 2, 3]);
        assert!(read_tlv(&enc[..enc.len() - 1]).is_err());
        assert!(split_signed(&enc).is_err());
        assert!(read_tlv(&[]).is_err());
    }
}
