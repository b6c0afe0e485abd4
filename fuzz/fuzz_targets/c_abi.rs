//! Fuzzes the C ABI as a C caller would drive it: random sequences of every export on one
//! directory handle, its sockets, well-known paths, hand-off and take-over, sweeps and
//! policies. The sequences and what they check are in `src/` (see `src/lib.rs`); the replay
//! program runs the same on stable Rust.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| usock_fuzz::run(data));
