//! libFuzzer target `provision_line`: see `fuzz/targets.rs` for what it feeds to hallmark.
#![no_main]

#[path = "../targets.rs"]
mod targets;

libfuzzer_sys::fuzz_target!(|data: &[u8]| targets::provision_line(data));
