//! jar (being written).
