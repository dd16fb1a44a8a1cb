//! PEM output with LF line endings (the `pem` crate defaults to CRLF).

/// Encodes `der` as a PEM block with `tag`.
pub fn encode(tag: &str, der: impl Into<Vec<u8>>) -> String {
    pem::encode_config(
        &pem::Pem::new(tag, der.into()),
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}
