//! Authenticode in PE, CAB and MSI files: the PKCS#7 (PE: in the certificate table; CAB:
//! appended, named by the header reserve; MSI: the `\u{5}DigitalSignature` stream), its SpcIndirectDataContent's
//! digest against the file's Authenticode digest (computed as for signing, on the file with the
//! table taken off), the signer over that content, and the SPC_RFC3161 time-stamp.

use crate::formats::authenticode::{PeFile, Signable};
use crate::formats::cab::CabFile;
use crate::formats::msi::MsiFile;

use super::{chain, cms, crypto, signer_checks, Options, Report};

use crate::formats::authenticode::SPC_INDIRECT_DATA;

fn u16_at(d: &[u8], off: usize) -> Option<usize> {
    Some(u16::from_le_bytes(d.get(off..off + 2)?.try_into().ok()?) as usize)
}

fn u32_at(d: &[u8], off: usize) -> Option<usize> {
    Some(u32::from_le_bytes(d.get(off..off + 4)?.try_into().ok()?) as usize)
}

/// The file without its certificate table (security directory zeroed) and the first
/// PKCS#7 in the table.
fn split_pe(data: &[u8]) -> Result<(Vec<u8>, Vec<u8>), String> {
    let pe = u32_at(data, 0x3c).ok_or("truncated DOS header")?;
    if data.get(pe..pe + 4) != Some(b"PE\0\0") {
        return Err("no PE signature at e_lfanew".into());
    }
    let opt = pe + 24;
    let dirs = match u16_at(data, opt) {
        Some(0x10b) => opt + 96,
        Some(0x20b) => opt + 112,
        _ => return Err("neither PE32 nor PE32+".into()),
    };
    let sec = dirs + 4 * 8;
    let addr = u32_at(data, sec).ok_or("truncated optional header")?;
    let size = u32_at(data, sec + 4).ok_or("truncated optional header")?;
    if addr == 0 || size == 0 {
        return Err("the file is not signed (no certificate table)".into());
    }
    let table = data
        .get(addr..addr.checked_add(size).ok_or("bad certificate table")?)
        .ok_or("the certificate table lies outside the file")?;
    if addr + size != data.len() {
        return Err("data follows the certificate table (not how Authenticode signs)".into());
    }
    let len = u32_at(table, 0).ok_or("truncated WIN_CERTIFICATE")?;
    if u16_at(table, 6) != Some(2) {
        return Err("the first WIN_CERTIFICATE is not PKCS#7 signed data".into());
    }
    let body = table
        .get(8..len.max(8))
        .ok_or("the WIN_CERTIFICATE runs past the table")?;
    let pkcs7 = crate::der::read_tlv(body)
        .map_err(|e| format!("the PKCS#7 in the certificate table: {e}"))?
        .whole
        .to_vec();
    if sec + 8 > addr {
        return Err("the certificate table overlaps the headers".into());
    }
    let mut unsigned = data[..addr].to_vec();
    unsigned[sec..sec + 8].fill(0);
    Ok((unsigned, pkcs7))
}

/// The signed file as its Authenticode digest sees it, and its PKCS#7.
fn split(data: &[u8]) -> Result<(Box<dyn Signable>, Vec<u8>), String> {
    if data.starts_with(b"MZ") {
        let (unsigned, pkcs7) = split_pe(data).map_err(|e| format!("PE: {e}"))?;
        let pe = PeFile::parse(unsigned).map_err(|e| format!("PE: {e}"))?;
        Ok((Box::new(pe), pkcs7))
    } else if data.starts_with(b"MSCF") {
        let (cab, pkcs7) = CabFile::parse_signed(data.to_vec()).map_err(|e| format!("CAB: {e}"))?;
        Ok((Box::new(cab), pkcs7))
    } else {
        let (msi, pkcs7) = MsiFile::parse_signed(data.to_vec()).map_err(|e| format!("MSI: {e}"))?;
        Ok((Box::new(msi), pkcs7))
    }
}

/// Verifies a signed Authenticode file: PE, CAB or MSI.
pub fn verify(data: &[u8], o: &Options<'_>) -> Report {
    let mut r = Report::new("authenticode");
    let (file, pkcs7) = match split(data) {
        Ok(x) => x,
        Err(e) => {
            r.fail("format", e);
            return r;
        }
    };
    let sd = match cms::parse(&pkcs7) {
        Ok(sd) => sd,
        Err(e) => {
            r.fail("format", format!("the embedded PKCS#7: {e}"));
            return r;
        }
    };
    r.pass(
        "format",
        format!(
            "Authenticode {} ({} signer(s), {} certificate(s))",
            file.kind(),
            sd.signers.len(),
            sd.certificates.len()
        ),
    );
    if let Err(e) = check(file.as_ref(), &sd, o, &mut r) {
        r.fail("signature", e);
    }
    r
}

fn check(
    file: &dyn Signable,
    sd: &cms::SignedData,
    o: &Options<'_>,
    r: &mut Report,
) -> Result<(), String> {
    if sd.content_type != SPC_INDIRECT_DATA {
        return Err("the PKCS#7 content is not SpcIndirectDataContent".into());
    }
    let content = sd.content.as_ref().ok_or("no SpcIndirectDataContent")?;
    // SpcIndirectDataContent ::= SEQUENCE { data, messageDigest DigestInfo }
    let data = crate::der::read_tlv(content).map_err(|e| e.to_string())?;
    let digest_info = crate::der::read_tlv(data.rest).map_err(|e| e.to_string())?;
    let alg = crate::der::read_tlv(digest_info.contents).map_err(|e| e.to_string())?;
    let digest = crate::der::read_tlv(alg.rest).map_err(|e| e.to_string())?;
    let file_hash = crypto::hash_of_oid(&cms::algorithm_oid(&alg)?)?;
    let actual = file.digest(file_hash).map_err(|e| e.to_string())?;
    if digest.contents != actual.as_slice() {
        return Err(format!(
            "the signed Authenticode digest is {}, the file's {} is {}: the file was changed",
            hex::encode(digest.contents),
            crypto::hash_name(file_hash),
            hex::encode(&actual)
        ));
    }
    let s = sd.signers.first().ok_or("no signer")?;
    let mut certs = sd.certificates.clone();
    certs.extend(o.certs.iter().cloned());
    let cert = cms::find_signer_cert(&s.sid, &certs)
        .ok_or("the signer's certificate is not in the signature")?
        .clone();
    let h = cms::signer_hash(s)?;
    let ok = cms::check_signer(s, SPC_INDIRECT_DATA, &h.digest(content), &cert)?;
    r.pass(
        "signature",
        format!(
            "{} by {}; the file's Authenticode {} matches",
            ok.scheme,
            chain::signer_text(&cert),
            crypto::hash_name(file_hash)
        ),
    );
    let token = cms::timestamp_token(s);
    signer_checks(r, &cert, &certs, token.as_deref(), &s.signature, o);
    Ok(())
}
