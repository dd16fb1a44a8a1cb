//! mcuboot (being written).
