//! Telling the process that made a directory from a child made by `fork`, which must remove
//! nothing.
//!
//! A process id is not enough: a child in a new pid namespace can carry its creator's pid number
//! (a container's pid 1 forking a namespaced helper, or any pid chosen with `clone3`'s
//! `set_tid`). On Linux 4.14 and later usock keeps a token in one page marked
//! `MADV_WIPEONFORK`, which the kernel zeroes in every child that does not share the parent's
//! memory. The token is made on first use from the random source and the monotonic clock (a
//! constant would match again once a child re-made it), so a child's token always differs from
//! the one its parent's handles recorded. The pid is checked beside the token: a child made by
//! `clone(CLONE_VM)` (or `vfork`) shares its creator's memory, so its page is not wiped and it
//! carries the creator's token, but never the creator's pid. Where the kernel lacks
//! wipe-on-fork, and on systems without pid namespaces, the pid alone decides.

use std::sync::atomic::{AtomicU64, Ordering};

/// Who made something: the process token (0 when wipe-on-fork is unavailable) and the pid. Both
/// must match: the token tells a forked child that has the creator's pid (pid namespaces), the
/// pid a child that shares the creator's memory and so its token (`CLONE_VM`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Creator {
    token: u64,
    pid: u32,
}

impl Creator {
    /// The calling process.
    pub fn current() -> Creator {
        Creator::current_with(token())
    }

    /// Is the calling process the one that `self` describes?
    pub fn is_current(&self) -> bool {
        self.is_current_with(token())
    }

    /// [`current`](Creator::current) with the wipe-on-fork page given (`None`: the kernel has
    /// none), so that a test can take the pid path on a kernel that has one.
    fn current_with(page: Option<&AtomicU64>) -> Creator {
        Creator {
            token: page.map_or(0, page_token),
            pid: super::getpid(),
        }
    }

    fn is_current_with(&self, page: Option<&AtomicU64>) -> bool {
        let token_matches = match page {
            Some(page) if self.token != 0 => page_token(page) == self.token,
            _ => true,
        };
        token_matches && super::getpid() == self.pid
    }
}

/// The token in the wipe-on-fork page, made now if this process has none yet (a fresh process,
/// or a child whose page the kernel zeroed).
fn page_token(page: &AtomicU64) -> u64 {
    let token = page.load(Ordering::Acquire);
    if token != 0 {
        return token;
    }
    let mut random = [0u8; 8];
    // Uniqueness, not secrecy, is what counts: the clock alone already differs between a parent
    // and a child made after it, the random bits guard against a coarse clock.
    let _ = super::random_bytes(&mut random);
    let fresh = (u64::from_ne_bytes(random) ^ monotonic_nanos()) | 1;
    match page.compare_exchange(0, fresh, Ordering::AcqRel, Ordering::Acquire) {
        Ok(_) => fresh,
        Err(made_by_another_thread) => made_by_another_thread,
    }
}

fn monotonic_nanos() -> u64 {
    // SAFETY: an all-zero timespec is valid; clock_gettime fills it.
    let mut ts: libc::timespec = unsafe { std::mem::zeroed() };
    // SAFETY: ts is a valid out-pointer; CLOCK_MONOTONIC always exists.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000) ^ ts.tv_nsec as u64
}

/// The process's wipe-on-fork page, mapped on first use; `None` where the kernel cannot wipe it.
#[cfg(target_os = "linux")]
fn token() -> Option<&'static AtomicU64> {
    use std::sync::OnceLock;

    // The address, kept as an integer: the static survives fork, the page's content does not.
    static PAGE: OnceLock<Option<usize>> = OnceLock::new();
    let addr = (*PAGE.get_or_init(map_wipe_on_fork_page))?;
    // SAFETY: addr is a page mapped read-write for the rest of the process's life, aligned for
    // AtomicU64, and only ever accessed through this atomic.
    Some(unsafe { &*(addr as *const AtomicU64) })
}

#[cfg(target_os = "linux")]
fn map_wipe_on_fork_page() -> Option<usize> {
    // SAFETY: sysconf has no preconditions.
    let len = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok()?;
    // SAFETY: an anonymous private mapping that nothing else refers to.
    let page = unsafe {
        libc::mmap(
            std::ptr::null_mut(),
            len,
            libc::PROT_READ | libc::PROT_WRITE,
            libc::MAP_PRIVATE | libc::MAP_ANONYMOUS,
            -1,
            0,
        )
    };
    if page == libc::MAP_FAILED {
        return None;
    }
    // SAFETY: page is the mapping just made, len bytes long.
    if unsafe { libc::madvise(page, len, libc::MADV_WIPEONFORK) } != 0 {
        // Before Linux 4.14 (EINVAL): the pid decides.
        // SAFETY: unmaps exactly the mapping made above, which nothing refers to.
        unsafe { libc::munmap(page, len) };
        return None;
    }
    Some(page as usize)
}

#[cfg(not(target_os = "linux"))]
fn token() -> Option<&'static AtomicU64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `check` in a child made by `fork` and returns what it answered.
    fn in_child(check: impl FnOnce() -> bool) -> bool {
        // SAFETY: the child only runs `check` (no locks taken) and leaves with _exit.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let code = if check() { 0 } else { 1 };
            // SAFETY: ends the child without running the parent's destructors.
            unsafe { libc::_exit(code) };
        }
        let mut status = 0;
        // SAFETY: pid is our child; status is a valid out-pointer.
        assert_eq!(unsafe { libc::waitpid(pid, &mut status, 0) }, pid);
        assert!(libc::WIFEXITED(status));
        libc::WEXITSTATUS(status) == 0
    }

    /// Without wipe-on-fork the pid is the check: recorded, it tells the creator from a child.
    #[test]
    fn without_wipe_on_fork_the_pid_tells_a_forked_child() {
        let creator = Creator::current_with(None);
        assert!(creator.is_current_with(None), "the creator itself");
        assert!(
            !in_child(|| creator.is_current_with(None)),
            "a forked child"
        );
    }

    /// With wipe-on-fork the token is checked (beside the pid), and a child's page is zeroed.
    #[cfg(target_os = "linux")]
    #[test]
    fn with_wipe_on_fork_the_token_tells_a_forked_child() {
        let Some(page) = token() else {
            eprintln!("skipped: this kernel has no MADV_WIPEONFORK");
            return;
        };
        let creator = Creator::current_with(Some(page));
        assert_ne!(creator.token, 0, "no token recorded");
        assert!(
            !in_child(|| page_token(page) == creator.token),
            "a forked child's token is its creator's"
        );
        assert!(creator.is_current_with(Some(page)), "the creator itself");
        assert!(
            !in_child(|| creator.is_current_with(Some(page))),
            "a forked child"
        );
    }
}
