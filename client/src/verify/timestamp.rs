//! An RFC 3161 time-stamp token: its imprint matches what it stamps, its TSA signed it, and the
//! TSA's certificate chains to the trusted root, was valid at the stamped time and is for
//! time-stamping alone. What a token proves is the time a signature existed.

use crate::der::read_tlv;

use super::{chain, cms, crypto};

/// A checked token.
#[derive(Debug, Clone)]
pub struct Stamp {
    /// genTime, Unix seconds.
    pub time: i64,
    /// The TSA certificate and its path to the root.
    pub path: Vec<Vec<u8>>,
    pub hash: crate::algorithm::HashAlg,
}

/// The token inside a TimeStampResp, or the token itself.
pub fn token_of(der: &[u8]) -> Result<Vec<u8>, String> {
    let outer = read_tlv(der).map_err(|e| e.to_string())?;
    let first = read_tlv(outer.contents).map_err(|e| e.to_string())?;
    if first.tag == 0x30 {
        // TimeStampResp { status PKIStatusInfo, timeStampToken }
        let status = read_tlv(first.contents).map_err(|e| e.to_string())?;
        if status.tag != 0x02 || status.contents.iter().any(|&b| b > 1) {
            return Err("the time-stamp response is a refusal".into());
        }
        let token = read_tlv(first.rest).map_err(|_| "a time-stamp response without a token")?;
        return Ok(token.whole.to_vec());
    }
    Ok(der.to_vec())
}

/// Whether `der` is a time-stamp token or response.
pub fn is_token(der: &[u8]) -> bool {
    token_of(der)
        .ok()
        .and_then(|t| cms::parse(&t).ok())
        .is_some_and(|sd| sd.content_type == cms::OID_TST_INFO)
}

/// Parses a GeneralizedTime's contents (YYYYMMDDHHMMSS[.f]Z).
pub fn generalized_time(s: &[u8]) -> Result<i64, String> {
    let s = std::str::from_utf8(s).map_err(|_| "bad GeneralizedTime")?;
    let digits = s.get(..14).ok_or("short GeneralizedTime")?;
    if !s.ends_with('Z') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("GeneralizedTime {s} is not UTC"));
    }
    let n = |a: usize, b: usize| digits[a..b].parse::<u16>().unwrap_or(0);
    let month = time::Month::try_from(n(4, 6) as u8).map_err(|e| e.to_string())?;
    let date = time::Date::from_calendar_date(n(0, 4) as i32, month, n(6, 8) as u8)
        .map_err(|e| e.to_string())?;
    let t = date
        .with_hms(n(8, 10) as u8, n(10, 12) as u8, n(12, 14) as u8)
        .map_err(|e| e.to_string())?;
    Ok(t.assume_utc().unix_timestamp())
}

/// Checks `token` (a ContentInfo, or a TimeStampResp holding one) as a time-stamp over
/// `stamped`, against `roots`; `pool` may hold the TSA's chain when the token does not.
pub fn check(
    token: &[u8],
    stamped: &[u8],
    pool: &[Vec<u8>],
    roots: &[Vec<u8>],
) -> Result<Stamp, String> {
    let token = token_of(token)?;
    let sd = cms::parse(&token)?;
    if sd.content_type != cms::OID_TST_INFO {
        return Err("not a time-stamp token (no TSTInfo)".into());
    }
    let info = sd
        .content
        .as_ref()
        .ok_or("a time-stamp token without TSTInfo")?;
    let seq = read_tlv(info).map_err(|e| format!("TSTInfo: {e}"))?;
    let version = read_tlv(seq.contents).map_err(|e| format!("TSTInfo: {e}"))?;
    let policy = read_tlv(version.rest).map_err(|e| format!("TSTInfo: {e}"))?;
    let imprint = read_tlv(policy.rest).map_err(|e| format!("TSTInfo: {e}"))?;
    let serial = read_tlv(imprint.rest).map_err(|e| format!("TSTInfo: {e}"))?;
    let gen = read_tlv(serial.rest).map_err(|e| format!("TSTInfo: {e}"))?;
    if gen.tag != 0x18 {
        return Err("TSTInfo without genTime".into());
    }
    let time = generalized_time(gen.contents)?;
    let alg = read_tlv(imprint.contents).map_err(|e| format!("messageImprint: {e}"))?;
    let hashed = read_tlv(alg.rest).map_err(|e| format!("messageImprint: {e}"))?;
    let hash = crypto::hash_of_oid(&cms::algorithm_oid(&alg)?)?;
    if hashed.contents != hash.digest(stamped).as_slice() {
        return Err("the token's imprint does not match what it should stamp".into());
    }
    let signer = sd.signers.first().ok_or("a token without a signer")?;
    let mut certs = sd.certificates.clone();
    certs.extend(pool.iter().cloned());
    let cert = cms::find_signer_cert(&signer.sid, &certs)
        .ok_or("the TSA's certificate is neither in the token nor given")?
        .clone();
    let h = cms::signer_hash(signer)?;
    cms::check_signer(signer, cms::OID_TST_INFO, &h.digest(info), &cert)
        .map_err(|e| format!("the TSA's signature: {e}"))?;
    let path = chain::build(&cert, &certs, roots).map_err(|e| format!("the TSA's chain: {e}"))?;
    chain::valid_at(&path, time).map_err(|e| format!("at the stamped time, {e}"))?;
    chain::usage(&cert, chain::Purpose::TimeStamping)?;
    Ok(Stamp { time, path, hash })
}
