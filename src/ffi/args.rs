//! Every conversion of a C argument, in one place: strings, paths, handles, descriptors and
//! out-parameters. Each is an `unsafe fn` whose contract is the export's own ("NULL or a
//! NUL-terminated string", "NULL or writable"), checks NULL before anything else, and fails with
//! the [`Error`] the boundary records, so that an export body reads as ordinary Rust with `?`.

use std::ffi::{CStr, OsStr, c_char, c_int};
use std::marker::PhantomData;
use std::os::fd::BorrowedFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::ptr::NonNull;

use super::UsockDir;
use super::handle::Entered;
use crate::error::{Error, ErrorKind, Result, show};

/// An `Invalid` error for a NULL argument that may not be NULL.
pub(crate) fn null_arg(name: &str) -> Error {
    Error::invalid(format!("argument {name} is NULL"))
}

/// An optional C string argument: `None` for NULL.
///
/// # Safety
/// A non-NULL `ptr` points to a NUL-terminated string that lives for `'a`.
pub(crate) unsafe fn opt_cstr<'a>(ptr: *const c_char) -> Option<&'a CStr> {
    if ptr.is_null() {
        None
    } else {
        // SAFETY: non-NULL, and the caller promises a NUL-terminated string.
        Some(unsafe { CStr::from_ptr(ptr) })
    }
}

/// An optional name (a socket's): `None` for NULL.
///
/// # Safety
/// As [`opt_cstr`].
pub(crate) unsafe fn opt_name<'a>(ptr: *const c_char) -> Option<&'a OsStr> {
    // SAFETY: as this function's contract.
    unsafe { opt_cstr(ptr) }.map(|n| OsStr::from_bytes(n.to_bytes()))
}

/// An optional path: `None` for NULL.
///
/// # Safety
/// As [`opt_cstr`].
unsafe fn opt_path<'a>(ptr: *const c_char) -> Option<&'a Path> {
    // SAFETY: as this function's contract.
    unsafe { opt_name(ptr) }.map(Path::new)
}

/// An optional parent directory: `None` for NULL, an `Invalid` error for "".
///
/// # Safety
/// As [`opt_cstr`].
pub(crate) unsafe fn opt_parent<'a>(ptr: *const c_char) -> Result<Option<&'a Path>> {
    // SAFETY: as this function's contract.
    let parent = unsafe { opt_path(ptr) };
    if parent.is_some_and(|p| p.as_os_str().is_empty()) {
        return Err(Error::invalid("the parent directory is an empty path"));
    }
    Ok(parent)
}

/// A path that may not be NULL; `what` names the argument in the error.
///
/// # Safety
/// As [`opt_cstr`].
pub(crate) unsafe fn path<'a>(ptr: *const c_char, what: &str) -> Result<&'a Path> {
    // SAFETY: as this function's contract.
    unsafe { opt_path(ptr) }.ok_or_else(|| null_arg(what))
}

/// Enters the handle `dir` for one call: the call proceeds while the guard lives. NULL, or a
/// handle that `usock_cleanup` is freeing, is an error.
///
/// # Safety
/// `dir` is NULL or a handle from `usock_create_dir` not yet passed to `usock_cleanup`.
pub(crate) unsafe fn handle<'a>(dir: *const UsockDir) -> Result<Entered<'a>> {
    // SAFETY: the caller passes NULL or a live handle. It is only read through a shared
    // reference (binding records sockets behind a lock), so use from several threads is sound.
    match unsafe { dir.as_ref() } {
        Some(handle) => handle.enter(),
        None => Err(null_arg("dir")),
    }
}

/// A descriptor borrowed for the call; a negative number is an `Invalid` error with `message`.
///
/// # Safety
/// None beyond the call's: a number that is not an open descriptor makes the system calls fail
/// with `EBADF`, nothing worse. (Unsafe to keep every conversion behind one word.)
pub(crate) unsafe fn borrow_fd<'a>(
    fd: c_int,
    message: impl FnOnce() -> String,
) -> Result<BorrowedFd<'a>> {
    if fd < 0 {
        return Err(Error::invalid(message()));
    }
    // SAFETY: fd is non-negative and only borrowed for the call; a number that is not an open
    // descriptor makes the system calls fail with EBADF, nothing worse.
    Ok(unsafe { BorrowedFd::borrow_raw(fd) })
}

/// An out-parameter, checked not NULL: written once, on success, by [`Out::write`].
pub(crate) struct Out<'a, T> {
    ptr: NonNull<T>,
    _borrow: PhantomData<&'a mut T>,
}

impl<T> Out<'_, T> {
    /// Writes the result (the previous contents are not read or dropped).
    pub(crate) fn write(self, value: T) {
        // SAFETY: ptr is non-NULL and writable, as `out`'s caller promised.
        unsafe { self.ptr.as_ptr().write(value) }
    }
}

/// A required out-parameter: NULL is an `Invalid` error naming `what`.
///
/// # Safety
/// `ptr` is NULL or writable for one `T` for `'a`.
pub(crate) unsafe fn out<'a, T>(ptr: *mut T, what: &str) -> Result<Out<'a, T>> {
    let ptr = NonNull::new(ptr).ok_or_else(|| null_arg(what))?;
    Ok(Out {
        ptr,
        _borrow: PhantomData,
    })
}

/// An optional out-parameter: `None` for NULL.
///
/// # Safety
/// As [`out`].
pub(crate) unsafe fn opt_out<'a, T>(ptr: *mut T) -> Option<Out<'a, T>> {
    NonNull::new(ptr).map(|ptr| Out {
        ptr,
        _borrow: PhantomData,
    })
}

/// Copies `path` and its NUL into `buf`, or fails with `USOCK_ERR_BUFFER` writing nothing.
///
/// # Safety
/// `buf` is NULL or writable for `buf_len` bytes.
pub(crate) unsafe fn write_path(path: &Path, buf: *mut c_char, buf_len: usize) -> Result<()> {
    let buf = NonNull::new(buf).ok_or_else(|| null_arg("buf"))?;
    let bytes = path.as_os_str().as_bytes();
    if bytes.len() + 1 > buf_len {
        return Err(Error::new(
            ErrorKind::Buffer,
            format!(
                "buffer of {buf_len} bytes is too small for {} ({} bytes with the NUL)",
                show(path),
                bytes.len() + 1
            ),
        ));
    }
    // SAFETY: buf is writable for buf_len >= bytes.len() + 1 bytes, as the caller promises.
    let out = unsafe { std::slice::from_raw_parts_mut(buf.as_ptr().cast::<u8>(), bytes.len() + 1) };
    out[..bytes.len()].copy_from_slice(bytes);
    out[bytes.len()] = 0;
    Ok(())
}
