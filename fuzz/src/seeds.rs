//! Seed sequences, written out as the bytes [`crate::input::Input`] reads: one for each
//! kind of use the fuzzer should start from. `replay --write-seeds fuzz/corpus-seed` writes them
//! for libFuzzer; the replay runs them, and random variations of them, on stable Rust.
//!
//! Bytes that read as "no" for a one-in-N choice are 1; operation numbers are the positions in
//! `ops::OPS`.

use crate::input::Script;

const CREATE: u8 = 0;
const CREATE_SHARED: u8 = 1;
const SOCKET_PATH: u8 = 2;
const BIND: u8 = 3;
const BIND_FD: u8 = 4;
const ADOPT: u8 = 5;
const CLEANUP: u8 = 6;
const CONNECT: u8 = 7;
const BIND_PATH: u8 = 8;
const UNBIND_PATH: u8 = 9;
const SWEEP: u8 = 10;
const HAND_OFF: u8 = 11;
const TAKE_OVER: u8 = 12;
const PEER_OF: u8 = 13;
const POLICY_NEW: u8 = 14;
const ACCEPT: u8 = 15;
const POLICY_CHECK: u8 = 16;
const POLICY_REFUSED: u8 = 17;
const POLICY_FREE: u8 = 18;
const CLOSE: u8 = 19;
const PLANT: u8 = 20;
const INFO: u8 = 21;
const DIR_IDLE: u8 = 22;
const OVERFLOW_IDS: u8 = 23;

// Arguments, in the order the operations read them.
const IN_SHORT: &[u8] = &[1, 0, 1, 1]; // parent, flags 0, own gid, out_dir
const IN_DEEP_LONG: &[u8] = &[3, 2, 1, 1]; // deep parent, USOCK_LONG_PATHS
const AUTOMATIC: &[u8] = &[0, 0, 1, 1];
const SOCK_STREAM: &[u8] = &[1, 1, 0, 1]; // name "sock", stream, backlog 0, out_fd
const CONNECT_SOCK: &[u8] = &[1, 0, 1, 2, 0, 1]; // "sock" by path, stream, non-blocking, any
const ACCEPT_FIRST: &[u8] = &[2, 0, 1, 1]; // descriptor 0, peer, out_fd
const ACCEPT_POLICY: &[u8] = &[1, 2, 0, 1, 1];
const SWEEP_SHORT_NOW: &[u8] = &[0, 0, 1, 1, 1]; // short parent, grace 0, flags 0, report, out

pub fn seeds() -> Vec<(&'static str, Vec<u8>)> {
    let s = Script::default;
    vec![
        (
            "server",
            s().op(CREATE, IN_SHORT)
                .op(BIND, SOCK_STREAM)
                .op(CONNECT, CONNECT_SOCK)
                .op(ACCEPT, ACCEPT_FIRST)
                .op(PEER_OF, &[2, 1, 1])
                .op(POLICY_NEW, &[0, 1, 1])
                .op(POLICY_CHECK, &[1, 2, 2, 1])
                .op(POLICY_REFUSED, &[1])
                .op(INFO, &[0, 3])
                .op(CLEANUP, &[]),
        ),
        (
            "long-paths",
            s().op(CREATE, IN_DEEP_LONG)
                .op(SOCKET_PATH, &[0, 1, 1, 1])
                .op(BIND, SOCK_STREAM)
                .op(CONNECT, &[1, 1, 1, 2, 0, 1])
                .op(SWEEP, &[2, 0, 1, 1, 1])
                .op(CLEANUP, &[]),
        ),
        (
            "hand-off",
            s().op(CREATE, IN_SHORT)
                .op(BIND, SOCK_STREAM)
                .op(HAND_OFF, &[1])
                .op(SWEEP, SWEEP_SHORT_NOW)
                .op(TAKE_OVER, &[0, 3, 0, 1, 1])
                .op(CLEANUP, &[]),
        ),
        (
            "hand-off-abandoned",
            s().op(CREATE, IN_SHORT)
                .op(HAND_OFF, &[1])
                .op(CLOSE, &[0])
                .op(SWEEP, SWEEP_SHORT_NOW),
        ),
        (
            "well-known",
            s().op(BIND_PATH, &[1, 0, 1, 0, 0, 0, 1])
                .op(CONNECT, &[1, 2, 0, 1, 0, 0, 1])
                .op(BIND_PATH, &[1, 0, 1, 0, 2, 0, 1])
                .op(UNBIND_PATH, &[1, 0])
                .op(UNBIND_PATH, &[1, 0]),
        ),
        (
            "shared",
            s().op(CREATE_SHARED, IN_SHORT)
                .op(BIND, SOCK_STREAM)
                .op(POLICY_NEW, &[1, 1, 1])
                .op(CONNECT, CONNECT_SOCK)
                .op(ACCEPT, ACCEPT_POLICY)
                .op(PLANT, &[0, 1])
                .op(CLEANUP, &[]),
        ),
        (
            "adopt",
            s().op(CREATE, IN_SHORT)
                .op(ADOPT, &[2, 0])
                .op(CONNECT, &[2, 0, 1, 2, 0, 1])
                .op(CLEANUP, &[]),
        ),
        (
            "bind-fd",
            s().op(CREATE, IN_SHORT)
                .op(BIND_FD, &[3, 2, 3, 0])
                .op(CONNECT, &[3, 0, 2, 0, 0, 1])
                .op(CLEANUP, &[]),
        ),
        (
            "refusing-policy",
            s().op(CREATE, IN_SHORT)
                .op(BIND, SOCK_STREAM)
                .op(POLICY_NEW, &[3, 1, 1])
                .op(CONNECT, CONNECT_SOCK)
                .op(ACCEPT, ACCEPT_POLICY)
                .op(POLICY_REFUSED, &[1])
                .op(POLICY_FREE, &[1]),
        ),
        (
            "stale-well-known",
            s().op(BIND_PATH, &[1, 0, 1, 0, 0, 0, 1])
                .op(CLOSE, &[0])
                .op(BIND_PATH, &[1, 0, 1, 0, 0, 0, 1])
                .op(UNBIND_PATH, &[1, 0])
                .op(UNBIND_PATH, &[1, 0]),
        ),
        (
            "idle",
            s().op(CREATE, IN_SHORT)
                .op(BIND, SOCK_STREAM)
                .op(DIR_IDLE, &[])
                .op(CLOSE, &[0])
                .op(DIR_IDLE, &[])
                .op(OVERFLOW_IDS, &[1, 1])
                .op(CLEANUP, &[]),
        ),
        (
            "automatic",
            s().op(CREATE, AUTOMATIC)
                .op(BIND, SOCK_STREAM)
                .op(CLEANUP, &[]),
        ),
    ]
    .into_iter()
    .map(|(name, script)| (name, script.0))
    .collect()
}
