//! libFuzzer target `verify`: see `fuzz/targets.rs` for what it feeds to hallmark.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::verify(data));
