//! Fuzzes the C ABI as a C caller would drive it: arbitrary parent and name bytes, flags,
//! socket types, backlogs and buffer sizes, in arbitrary order on one handle.
//!
//! Checked on every input: no crash (AddressSanitizer is on), every status is one of the
//! documented codes and never USOCK_ERR_PANIC, out-parameters are untouched on failure,
//! returned paths fit in USOCK_PATH_MAX, no descriptor is leaked, and cleanup leaves nothing.
//!
//! Parents are confined to a scratch directory: fuzzed bytes are appended below it, with `..`
//! defused, so that no input can make usock create anything elsewhere.
#![no_main]

use std::ffi::{CStr, CString};
use std::ptr;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use usock::ffi::*;

fn scratch() -> &'static CStr {
    static DIR: OnceLock<CString> = OnceLock::new();
    DIR.get_or_init(|| {
        let path = format!("/tmp/usock-fuzz-{}", std::process::id());
        let _ = std::fs::create_dir(&path);
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))
            .unwrap();
        std::fs::create_dir_all(format!("{path}/a/b")).unwrap();
        CString::new(path).unwrap()
    })
}

struct Input<'a>(&'a [u8]);

impl Input<'_> {
    fn byte(&mut self) -> u8 {
        let (first, rest) = self.0.split_first().unwrap_or((&0, &[]));
        self.0 = rest;
        *first
    }
    fn int(&mut self) -> i32 {
        i32::from_le_bytes([self.byte(), self.byte(), self.byte(), self.byte()])
    }
    /// A string of up to `max` bytes; a NUL ends it, as it would for C.
    fn text(&mut self, max: usize) -> Vec<u8> {
        let len = (self.byte() as usize).min(max).min(self.0.len());
        let (bytes, rest) = self.0.split_at(len);
        self.0 = rest;
        bytes.iter().take_while(|&&b| b != 0).copied().collect()
    }
}

fn documented(status: i32) -> bool {
    (USOCK_ERR_BUFFER..=USOCK_OK).contains(&status)
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

fuzz_target!(|data: &[u8]| {
    let mut input = Input(data);
    let fds_before = open_fds();

    // The parent: NULL (automatic), the scratch directory, or fuzzed bytes below it.
    let choice = input.byte();
    let parent = match choice % 4 {
        0 => None,
        1 => Some(scratch().to_owned()),
        _ => {
            let tail = input.text(200);
            let tail: Vec<u8> = tail
                .windows(2)
                .map(|w| if w == b".." { b'_' } else { w[0] })
                .chain(tail.last().copied())
                .collect();
            let mut bytes = scratch().to_bytes().to_vec();
            bytes.push(b'/');
            bytes.extend(tail);
            Some(CString::new(bytes).unwrap())
        }
    };
    let flags = if input.byte() < 32 { input.int() as u32 } else { 0 };
    let sentinel: *mut UsockDir = ptr::dangling_mut();
    let mut dir = sentinel;
    let parent_ptr = parent.as_ref().map_or(ptr::null(), |p| p.as_ptr());
    let rc = unsafe { usock_create_dir(parent_ptr, flags, &mut dir) };
    assert!(documented(rc) && rc != USOCK_ERR_PANIC, "create: {rc}");
    if rc != USOCK_OK {
        assert_eq!(dir, sentinel, "out_dir written on failure");
        assert!(!unsafe { CStr::from_ptr(usock_last_error()) }.is_empty());
        assert_eq!(open_fds(), fds_before);
        return;
    }
    assert_eq!(flags, 0);

    let mut fds = Vec::new();
    for _ in 0..(input.byte() % 8) {
        let name = match input.byte() % 3 {
            0 => None,
            _ => Some(CString::new(input.text(150)).unwrap()),
        };
        let name_ptr = name.as_ref().map_or(ptr::null(), |n| n.as_ptr());
        if input.byte() % 2 == 0 {
            let len = input.byte() as usize;
            let mut buf = vec![0x55u8; 256];
            let rc = unsafe { usock_socket_path(dir, name_ptr, buf.as_mut_ptr().cast(), len) };
            assert!(documented(rc), "socket_path: {rc}");
            if rc == USOCK_OK {
                let path = unsafe { CStr::from_ptr(buf.as_ptr().cast()) };
                assert!(path.to_bytes().len() < USOCK_PATH_MAX && path.to_bytes().len() < len);
            } else {
                assert!(buf.iter().all(|&b| b == 0x55), "buffer written on failure");
            }
        } else {
            let ty = match input.byte() % 5 {
                0 => 0,
                1 => libc::SOCK_STREAM,
                2 => libc::SOCK_SEQPACKET,
                3 => libc::SOCK_DGRAM,
                _ => input.int(),
            };
            let backlog = input.int();
            let mut fd = -77;
            let rc = unsafe { usock_bind(dir, name_ptr, ty, backlog, &mut fd) };
            assert!(documented(rc), "bind: {rc}");
            if rc == USOCK_OK {
                assert!(fd >= 0);
                fds.push(fd);
            } else {
                assert_eq!(fd, -77, "out_fd written on failure");
            }
        }
    }
    for fd in fds {
        unsafe { libc::close(fd) };
    }
    let path = unsafe { CStr::from_ptr(usock_dir_path(dir)) }.to_owned();
    let rc = unsafe { usock_cleanup(dir) };
    assert_eq!(rc, USOCK_OK, "cleanup: {:?}", unsafe { CStr::from_ptr(usock_last_error()) });
    assert!(std::fs::symlink_metadata(path.to_str().unwrap()).is_err(), "left {path:?}");
    assert_eq!(open_fds(), fds_before, "descriptor leaked");
});
