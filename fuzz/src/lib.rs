//! Sequences of C ABI calls on one directory handle, checked as they go: the fuzz target
//! (`fuzz_targets/c_abi.rs`, libFuzzer) and the replay program (`src/bin/replay.rs`, stable
//! Rust, run by `make test`) both run [`run`].
//!
//! An input is a list of operations (each export of include/usock.h, plus closing a
//! descriptor and putting a file into the directory), each followed by its arguments. Checked
//! on every call: the status is one the export documents (never USOCK_ERR_PANIC); a failure
//! leaves a message and the errno `usock_last_errno` promises; out-parameters are written only
//! on success; files get the modes promised; descriptors are close-on-exec where promised; a
//! sweep never removes a live or locked directory; peers are this process; a policy counts
//! what it refuses. After each sequence (teardown included): no descriptor leaked and nothing
//! left in the scratch parents.
//!
//! No operation can block: listeners are made non-blocking, and a blocking connect is made only
//! while every listener has a backlog larger than a sequence can fill.

pub mod check;
pub mod input;
mod ops;
pub mod scratch;
pub mod seeds;
mod world;

use input::Input;
use world::World;

/// Operations per sequence at most (each adds at most one queued connection to a listener).
pub const MAX_OPS: usize = 64;

/// Runs the sequence `data` encodes; panics on the first broken promise.
pub fn run(data: &[u8]) {
    let scratch = scratch::scratch();
    let fds_before = scratch::open_fds();
    let mut input = Input::new(data);
    let mut world = World::default();
    for _ in 0..MAX_OPS {
        if input.is_empty() {
            break;
        }
        let op = input.byte() as usize % ops::OPS.len();
        if trace() {
            eprintln!(
                "{} (dir {}, fds {:?}, bound {:?})",
                ops::OPS[op].0,
                world.dir.is_some(),
                world.fds,
                world
                    .bound
                    .iter()
                    .map(|b| (&b.path, b.id))
                    .collect::<Vec<_>>()
            );
        }
        (ops::OPS[op].1)(&mut world, &mut input);
    }
    world.tear_down();
    scratch.assert_clean();
    assert_eq!(scratch::open_fds(), fds_before, "descriptor leaked");
}

/// The operations' names, in the order inputs number them (for the seed corpus).
pub fn op_names() -> Vec<&'static str> {
    ops::OPS.iter().map(|(name, _)| *name).collect()
}

/// USOCK_FUZZ_TRACE set: print each operation to stderr (to read a failing input).
fn trace() -> bool {
    static TRACE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *TRACE.get_or_init(|| std::env::var_os("USOCK_FUZZ_TRACE").is_some())
}

/// With USOCK_FUZZ_TRACE set, each checked call and its status (to see what a corpus reaches).
pub(crate) fn trace_call(call: &str, status: std::ffi::c_int) {
    if trace() {
        let why = if status == 0 {
            String::new()
        } else {
            check::last_error()
        };
        eprintln!("  {call} -> {} {why}", check::name(status));
    }
}
