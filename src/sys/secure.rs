//! Whether the process runs with privileges its invoker does not have (setuid, setgid, file
//! capabilities): then its environment belongs to the invoker and must not steer usock.

/// `getauxval(AT_SECURE)` on Linux; `issetugid()` elsewhere.
pub fn secure_execution() -> bool {
    #[cfg(target_os = "linux")]
    // SAFETY: getauxval only reads the auxiliary vector; 0 means "not set" or "not secure".
    return unsafe { libc::getauxval(libc::AT_SECURE) != 0 };
    #[cfg(not(target_os = "linux"))]
    // SAFETY: issetugid only reads the process's state.
    return unsafe { libc::issetugid() != 0 };
}
