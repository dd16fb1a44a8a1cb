//! DER for the X.509 extensions hallmark writes itself.
//!
//! rcgen lays out names, validity and keys; every extension is written here, so criticality and
//! content follow the profile and the standards, never a library default.

pub use crate::der::oid;
use crate::der::tlv;
use crate::policy::SanEntry;

/// The OID components, for rcgen's custom extensions.
pub fn oid_arcs(dotted: &str) -> Vec<u64> {
    dotted.split('.').filter_map(|a| a.parse().ok()).collect()
}

fn seq(parts: &[Vec<u8>]) -> Vec<u8> {
    tlv(0x30, &parts.concat())
}

/// An extension ready for rcgen: OID, criticality, DER value.
pub struct Ext {
    pub oid: &'static str,
    pub critical: bool,
    pub value: Vec<u8>,
}

impl Ext {
    pub fn into_rcgen(self) -> rcgen::CustomExtension {
        let mut e = rcgen::CustomExtension::from_oid_content(&oid_arcs(self.oid), self.value);
        e.set_criticality(self.critical);
        e
    }
}

pub const BASIC_CONSTRAINTS: &str = "2.5.29.19";
pub const KEY_USAGE: &str = "2.5.29.15";
pub const EXT_KEY_USAGE: &str = "2.5.29.37";
pub const SUBJECT_KEY_ID: &str = "2.5.29.14";
pub const AUTHORITY_KEY_ID: &str = "2.5.29.35";
pub const CRL_DP: &str = "2.5.29.31";
pub const AIA: &str = "1.3.6.1.5.5.7.1.1";
pub const CERT_POLICIES: &str = "2.5.29.32";
pub const SUBJECT_ALT_NAME: &str = "2.5.29.17";
pub const OCSP_NOCHECK: &str = "1.3.6.1.5.5.7.48.1.5";

/// basicConstraints, always critical.
pub fn basic_constraints(ca: bool, path_len: Option<u8>) -> Ext {
    let mut parts = Vec::new();
    if ca {
        parts.push(vec![0x01, 0x01, 0xff]);
        if let Some(n) = path_len {
            parts.push(integer_u64(n as u64));
        }
    }
    Ext {
        oid: BASIC_CONSTRAINTS,
        critical: true,
        value: seq(&parts),
    }
}

fn integer_u64(v: u64) -> Vec<u8> {
    let bytes = v.to_be_bytes();
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(7);
    let mut body = Vec::new();
    if bytes[first] & 0x80 != 0 {
        body.push(0);
    }
    body.extend_from_slice(&bytes[first..]);
    tlv(0x02, &body)
}

/// keyUsage from bit numbers, always critical. DER: trailing zero bits dropped.
pub fn key_usage(bits: &[u8]) -> Ext {
    let mut value: u16 = 0;
    for &b in bits {
        value |= 1 << (15 - b);
    }
    let bytes = value.to_be_bytes();
    let (content, unused): (Vec<u8>, u8) = if value == 0 {
        (vec![], 0)
    } else {
        let len = if bytes[1] == 0 { 1 } else { 2 };
        let last = bytes[len - 1];
        (bytes[..len].to_vec(), last.trailing_zeros() as u8)
    };
    let mut body = vec![unused];
    body.extend_from_slice(&content);
    Ext {
        oid: KEY_USAGE,
        critical: true,
        value: tlv(0x03, &body),
    }
}

pub fn ext_key_usage(oids: &[&str], critical: bool) -> Ext {
    Ext {
        oid: EXT_KEY_USAGE,
        critical,
        value: seq(&oids.iter().map(|o| oid(o)).collect::<Vec<_>>()),
    }
}

pub fn subject_key_id(id: &[u8]) -> Ext {
    Ext {
        oid: SUBJECT_KEY_ID,
        critical: false,
        value: tlv(0x04, id),
    }
}

pub fn authority_key_id(id: &[u8]) -> Ext {
    Ext {
        oid: AUTHORITY_KEY_ID,
        critical: false,
        value: seq(&[tlv(0x80, id)]),
    }
}

fn uri(u: &str) -> Vec<u8> {
    tlv(0x86, u.as_bytes())
}

pub fn crl_distribution_point(url: &str) -> Ext {
    // DistributionPoint { distributionPoint [0] { fullName [0] { URI } } }
    let full_name = tlv(0xa0, &uri(url));
    let dp_name = tlv(0xa0, &full_name);
    Ext {
        oid: CRL_DP,
        critical: false,
        value: seq(&[seq(&[dp_name])]),
    }
}

pub fn authority_info_access(ocsp: Option<&str>, ca_issuers: Option<&str>) -> Ext {
    let mut parts = Vec::new();
    if let Some(o) = ocsp {
        parts.push(seq(&[oid("1.3.6.1.5.5.7.48.1"), uri(o)]));
    }
    if let Some(c) = ca_issuers {
        parts.push(seq(&[oid("1.3.6.1.5.5.7.48.2"), uri(c)]));
    }
    Ext {
        oid: AIA,
        critical: false,
        value: seq(&parts),
    }
}

pub fn certificate_policies(oids: &[String]) -> Ext {
    Ext {
        oid: CERT_POLICIES,
        critical: false,
        value: seq(&oids.iter().map(|o| seq(&[oid(o)])).collect::<Vec<_>>()),
    }
}

pub fn subject_alt_name(sans: &[SanEntry]) -> Ext {
    let names: Vec<Vec<u8>> = sans
        .iter()
        .filter_map(|s| match s {
            SanEntry::Email(e) => Some(tlv(0x81, e.as_bytes())),
            SanEntry::Dns(d) => Some(tlv(0x82, d.as_bytes())),
            SanEntry::Uri(u) => Some(tlv(0x86, u.as_bytes())),
            SanEntry::Ip(std::net::IpAddr::V4(a)) => Some(tlv(0x87, &a.octets())),
            SanEntry::Ip(std::net::IpAddr::V6(a)) => Some(tlv(0x87, &a.octets())),
            SanEntry::Other(_) => None,
        })
        .collect();
    Ext {
        oid: SUBJECT_ALT_NAME,
        critical: false,
        value: seq(&names),
    }
}

pub fn ocsp_nocheck() -> Ext {
    Ext {
        oid: OCSP_NOCHECK,
        critical: false,
        value: vec![0x05, 0x00],
    }
}

/// RFC 7093 method 1: the leftmost 160 bits of SHA-256 over the subjectPublicKey BIT STRING value.
pub fn key_id(public_key_bits: &[u8]) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(public_key_bits)[..20].to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oids_encode() {
        assert_eq!(oid("2.5.29.19"), vec![0x06, 0x03, 0x55, 0x1d, 0x13]);
        assert_eq!(
            oid("1.2.840.113549.1.1.11"),
            vec![0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b]
        );
        // 2.999.4294967295: 2*40+999 = 1079 (2 digits), 2^32-1 (5 digits).
        assert_eq!(oid("2.999.4294967295").len(), 2 + 2 + 5);
    }

    #[test]
    fn key_usage_bits() {
        // digitalSignature only: 03 02 07 80
        assert_eq!(key_usage(&[0]).value, vec![0x03, 0x02, 0x07, 0x80]);
        // keyCertSign + cRLSign: 03 02 01 06
        assert_eq!(key_usage(&[5, 6]).value, vec![0x03, 0x02, 0x01, 0x06]);
    }

    #[test]
    fn basic_constraints_forms() {
        assert_eq!(basic_constraints(false, None).value, vec![0x30, 0x00]);
        assert_eq!(
            basic_constraints(true, Some(0)).value,
            vec![0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x00]
        );
    }
}
