//! Names: the unpredictable directory names usock makes, and the socket names callers give.

use std::ffi::{CString, OsStr};
use std::os::unix::ffi::OsStrExt;

use crate::error::{Error, Result, show_bytes};
use crate::sys;

/// Every private directory's name starts with this, so a person listing `/tmp` knows whose it is.
pub const DIR_PREFIX: &str = "usock-";

/// Random characters after the prefix: 13 from a 32-letter alphabet, 65 bits from the OS.
const RANDOM_CHARS: usize = 13;

/// Lower-case letters and digits without the look-alikes `0 1 l o`: 32 symbols, 5 bits each.
const ALPHABET: &[u8; 32] = b"abcdefghijkmnpqrstuvwxyz23456789";

/// Length of a directory name made by [`random_dir_name`].
pub const DIR_NAME_LEN: usize = DIR_PREFIX.len() + RANDOM_CHARS;

/// The socket name used when the caller gives none.
pub const DEFAULT_SOCKET_NAME: &str = "sock";

/// A fresh directory name, `usock-` and 13 characters carrying 65 bits from `getrandom`.
pub fn random_dir_name() -> std::io::Result<CString> {
    let mut random = [0u8; 9]; // 72 bits; 65 are used
    #[cfg(feature = "test-hooks")]
    if let Some(forced) = testing::forced() {
        random = forced;
    } else {
        sys::random_bytes(&mut random)?;
    }
    #[cfg(not(feature = "test-hooks"))]
    sys::random_bytes(&mut random)?;
    let mut bits: u128 = 0;
    for b in random {
        bits = (bits << 8) | u128::from(b);
    }
    let mut name = Vec::with_capacity(DIR_NAME_LEN + 1);
    name.extend_from_slice(DIR_PREFIX.as_bytes());
    for _ in 0..RANDOM_CHARS {
        name.push(ALPHABET[(bits & 31) as usize]);
        bits >>= 5;
    }
    Ok(CString::new(name).expect("alphabet has no NUL"))
}

/// A fresh random name of at most `len` characters (at least 1; a dot and 13 random characters
/// when `len` allows, a hidden name in listings) for a socket bound beside a well-known path
/// before it is renamed over it. `len` is the room `sun_path` leaves beside the path, so a short
/// path's name still gets all 65 random bits. Only the user can create entries in that
/// directory, so the name needs to be fresh, not secret.
pub fn random_temp_name(len: usize) -> std::io::Result<CString> {
    let len = len.clamp(1, 1 + RANDOM_CHARS);
    let mut random = [0u8; 14];
    sys::random_bytes(&mut random)?;
    let mut name = Vec::with_capacity(len + 1);
    if len > 1 {
        name.push(b'.');
    }
    for b in random.iter().take(len - name.len()) {
        name.push(ALPHABET[usize::from(b & 31)]);
    }
    Ok(CString::new(name).expect("alphabet has no NUL"))
}

/// Is `name` one that [`random_temp_name`] makes where there is room: a dot and 13 characters
/// of the alphabet?
pub fn is_temp_name(name: &[u8]) -> bool {
    name.len() == 1 + RANDOM_CHARS
        && name[0] == b'.'
        && name[1..].iter().all(|b| ALPHABET.contains(b))
}

/// Is `name` one that [`random_dir_name`] makes: the prefix and 13 characters of the alphabet?
pub fn is_dir_name(name: &[u8]) -> bool {
    name.len() == DIR_NAME_LEN
        && name.starts_with(DIR_PREFIX.as_bytes())
        && name[DIR_PREFIX.len()..]
            .iter()
            .all(|b| ALPHABET.contains(b))
}

/// The file that marks a private directory as kept from sweeps for a while
/// ([`PrivateDir::keep`](crate::PrivateDir::keep)); never a socket name.
pub(crate) const KEEP_MARK: &std::ffi::CStr = c".usock-keep";

/// Checks a socket name given by a caller: one path component, not empty, no `/`, no NUL,
/// not `.`, `..` or the keep mark's name. `None` means [`DEFAULT_SOCKET_NAME`].
pub fn socket_name(name: Option<&OsStr>) -> Result<CString> {
    let bytes = name.map_or(DEFAULT_SOCKET_NAME.as_bytes(), OsStr::as_bytes);
    let reason = if bytes.is_empty() {
        Some("it is empty")
    } else if bytes.contains(&b'/') {
        Some("it contains '/' (a name is one path component)")
    } else if bytes.contains(&0) {
        Some("it contains a NUL byte")
    } else if bytes == b"." || bytes == b".." {
        Some("'.' and '..' name directories, not sockets")
    } else if bytes == KEEP_MARK.to_bytes() {
        Some("it is the name of the mark that keeps a directory from a sweep")
    } else {
        None
    };
    match reason {
        Some(why) => Err(Error::invalid(format!(
            "bad socket name \"{}\": {why}",
            show_bytes(bytes)
        ))),
        None => Ok(CString::new(bytes).expect("checked for NUL")),
    }
}

/// Test builds only (feature `test-hooks`): force the bytes the random source returns on the
/// calling thread, to test collisions and pre-emption.
#[cfg(feature = "test-hooks")]
#[doc(hidden)]
pub mod testing {
    use std::cell::Cell;

    thread_local! {
        // (It is const; clippy asks again where thread-locals are emulated, as on OpenBSD.)
        #[allow(clippy::missing_const_for_thread_local)]
        static FORCED: Cell<Option<([u8; 9], usize)>> = const { Cell::new(None) };
    }

    /// The next `times` directory names made on this thread use `bytes` instead of the OS
    /// random source (`usize::MAX`: until called again); `times == 0` ends forcing.
    pub fn force_random(bytes: [u8; 9], times: usize) {
        FORCED.with(|f| f.set((times > 0).then_some((bytes, times))));
    }

    pub(crate) fn forced() -> Option<[u8; 9]> {
        FORCED.with(|f| {
            let (bytes, times) = f.get()?;
            f.set((times > 1).then_some((bytes, times.saturating_sub(1))));
            Some(bytes)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dir_names_have_prefix_length_and_alphabet() {
        let name = random_dir_name().unwrap();
        let bytes = name.to_bytes();
        assert_eq!(bytes.len(), DIR_NAME_LEN);
        assert!(bytes.starts_with(DIR_PREFIX.as_bytes()));
        assert!(
            bytes[DIR_PREFIX.len()..]
                .iter()
                .all(|b| ALPHABET.contains(b))
        );
    }

    #[test]
    fn socket_names() {
        assert_eq!(socket_name(None).unwrap().to_bytes(), b"sock");
        assert_eq!(
            socket_name(Some(OsStr::new("api.sock")))
                .unwrap()
                .to_bytes(),
            b"api.sock"
        );
        for bad in ["", "a/b", "/", ".", "..", "x\0y", ".usock-keep"] {
            let err = socket_name(Some(OsStr::new(bad))).unwrap_err();
            assert_eq!(err.kind(), crate::ErrorKind::Invalid, "{bad:?}");
        }
        // "..." and names with spaces are ordinary names
        assert!(socket_name(Some(OsStr::new("..."))).is_ok());
        assert!(socket_name(Some(OsStr::new("a b"))).is_ok());
        assert!(socket_name(Some(OsStr::from_bytes(b"\xff\xfe"))).is_ok());
    }
}
