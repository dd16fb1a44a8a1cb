//! authenticode (being written).
