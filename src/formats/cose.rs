//! cose (being written).
