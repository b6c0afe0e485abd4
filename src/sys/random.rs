//! The operating system's random source, with no descriptor kept between calls.
//!
//! A library that keeps a descriptor of `/dev/urandom` in a static (as the `getrandom` crate's
//! Linux fallback and std's hash seeding do) reads from whatever file the application opens at
//! that number after closing all its descriptors. On Linux usock calls `getrandom(2)` itself
//! (through the C library's function when there is one, so a preloaded test shim replaces it,
//! and the system call on a glibc older than 2.25); only when the
//! kernel or a seccomp filter refuses it (`ENOSYS`, `EPERM`) does it open `/dev/urandom`,
//! check that it is the kernel's random device (character device 1:9), read, and close it
//! again. Elsewhere the `getrandom` crate uses `getentropy` or the platform's equivalent, which
//! keeps no descriptor either.

use std::io;

/// Fills `buf` from the operating system's random source.
#[cfg(target_os = "linux")]
pub fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        let n = getrandom(rest);
        if n >= 0 {
            filled += n as usize;
            continue;
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => {}
            Some(libc::ENOSYS | libc::EPERM) => return read_urandom(rest),
            _ => return Err(err),
        }
    }
    Ok(())
}

/// `getrandom(2)` into `buf`: through the C library's `getrandom` when it has one (glibc 2.25
/// and later; found at run time, so the library also loads on older systems, and a preloaded
/// replacement is the one called), else the system call itself.
#[cfg(target_os = "linux")]
fn getrandom(buf: &mut [u8]) -> isize {
    use std::sync::atomic::{AtomicUsize, Ordering};

    type GetRandom = unsafe extern "C" fn(*mut libc::c_void, libc::size_t, libc::c_uint) -> isize;
    const UNKNOWN: usize = 1;
    static FOUND: AtomicUsize = AtomicUsize::new(UNKNOWN);
    let mut found = FOUND.load(Ordering::Acquire);
    if found == UNKNOWN {
        // SAFETY: dlsym with a NUL-terminated name; it only looks the symbol up.
        found = unsafe { libc::dlsym(libc::RTLD_DEFAULT, c"getrandom".as_ptr()) } as usize;
        FOUND.store(found, Ordering::Release);
    }
    if found != 0 {
        // SAFETY: the C library's getrandom has this signature; buf is writable for its length.
        let getrandom: GetRandom = unsafe { std::mem::transmute::<usize, GetRandom>(found) };
        // SAFETY: as above.
        unsafe { getrandom(buf.as_mut_ptr().cast(), buf.len(), 0) }
    } else {
        // SAFETY: the system call writes at most buf.len() bytes into buf.
        unsafe { libc::syscall(libc::SYS_getrandom, buf.as_mut_ptr(), buf.len(), 0) as isize }
    }
}

/// Reads `buf` from a freshly opened `/dev/urandom`, after checking that it is the kernel's
/// random device, and closes it again.
#[cfg(target_os = "linux")]
fn read_urandom(buf: &mut [u8]) -> io::Result<()> {
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

    let flags = libc::O_RDONLY | libc::O_CLOEXEC | libc::O_NOCTTY | libc::O_NOFOLLOW;
    let fd = super::retry(|| {
        // SAFETY: the path is NUL-terminated; the result is a new descriptor we own.
        let fd = super::cvt(unsafe { libc::open(c"/dev/urandom".as_ptr(), flags) })?;
        // SAFETY: open returned a fresh descriptor that nothing else owns.
        Ok(unsafe { OwnedFd::from_raw_fd(fd) })
    })?;
    // SAFETY: an all-zero stat is valid; fstat fills it on success.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: fd is open; st is a valid out-pointer.
    super::cvt(unsafe { libc::fstat(fd.as_raw_fd(), &mut st) })?;
    let is_urandom = st.st_mode & libc::S_IFMT == libc::S_IFCHR
        && libc::major(st.st_rdev) == 1
        && libc::minor(st.st_rdev) == 9;
    if !is_urandom {
        return Err(io::Error::other(
            "getrandom(2) is unavailable and /dev/urandom is not the kernel's random device \
             (character device 1:9)",
        ));
    }
    let mut filled = 0;
    while filled < buf.len() {
        let rest = &mut buf[filled..];
        // SAFETY: rest is writable for rest.len() bytes; fd is open.
        let n = unsafe { libc::read(fd.as_raw_fd(), rest.as_mut_ptr().cast(), rest.len()) };
        match n {
            n if n > 0 => filled += n as usize,
            0 => return Err(io::Error::from_raw_os_error(libc::EIO)),
            _ => {
                let err = io::Error::last_os_error();
                if err.raw_os_error() != Some(libc::EINTR) {
                    return Err(err);
                }
            }
        }
    }
    Ok(())
}

/// Fills `buf` from the operating system's random source.
#[cfg(not(target_os = "linux"))]
pub fn random_bytes(buf: &mut [u8]) -> io::Result<()> {
    getrandom::fill(buf).map_err(|e| match e.raw_os_error() {
        Some(errno) => io::Error::from_raw_os_error(errno),
        None => io::Error::other(e.to_string()),
    })
}
