//! The scratch parents: one directory per process with a random name, holding a short, a
//! medium and a deep parent (so that socket paths fit, fit only for short names, or never fit
//! in `sun_path`) and a directory for well-known paths. Everything a sequence makes goes in
//! there (or, for automatic parents, is removed by its cleanup), and the whole tree is removed
//! when the process exits.
//!
//! The base is in /dev/shm where that works (a tmpfs on Linux), else in /tmp: every
//! sequence makes and removes directories and sockets, which costs several times more on a
//! journaling file system (on ext4 `mkdir` was the costliest call of a sequence). The parents
//! are padded to the same lengths either way, so the same inputs meet the same limits.

use std::ffi::{CStr, CString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

pub struct Scratch {
    pub base: PathBuf,
    pub short: CString,
    pub medium: CString,
    pub deep: CString,
    pub well_known: CString,
}

/// The lengths of the medium and the deep parent's paths.
const MEDIUM: usize = 78;
const DEEP: usize = 113;

pub fn scratch() -> &'static Scratch {
    static SCRATCH: OnceLock<Scratch> = OnceLock::new();
    SCRATCH.get_or_init(|| {
        let base = make_base();
        let _ = SCRATCH_BASE.set(base.clone());
        // SAFETY: remove_at_exit is an extern "C" fn with no arguments, safe at exit.
        unsafe { libc::atexit(remove_at_exit) };
        let pad = |len: usize| len - base.as_os_str().len() - 1;
        let sub = |name: String| {
            let path = base.join(name);
            std::fs::create_dir(&path).unwrap();
            std::fs::set_permissions(&path, PermissionsExt::from_mode(0o700)).unwrap();
            CString::new(path.into_os_string().into_vec()).unwrap()
        };
        Scratch {
            short: sub("p".into()),
            medium: sub("m".repeat(pad(MEDIUM))),
            deep: sub("d".repeat(pad(DEEP))),
            well_known: sub("wk".into()),
            base,
        }
    })
}

/// A fresh directory with a random name (mkdtemp), mode 0755, owned by us: in /dev/shm where
/// that works, else in /tmp.
fn make_base() -> PathBuf {
    let made = [*b"/dev/shm/usfuzz-XXXXXX\0", *b"/tmp/usock-fuzz-XXXXXX\0"]
        .into_iter()
        .find_map(mkdtemp);
    let path = made.unwrap_or_else(|| panic!("mkdtemp: {}", std::io::Error::last_os_error()));
    std::fs::set_permissions(&path, PermissionsExt::from_mode(0o755)).unwrap();
    path
}

fn mkdtemp(mut template: [u8; 23]) -> Option<PathBuf> {
    // SAFETY: template is a writable NUL-terminated buffer ending in XXXXXX.
    let made = unsafe { libc::mkdtemp(template.as_mut_ptr().cast()) };
    (!made.is_null())
        .then(|| PathBuf::from(std::ffi::OsStr::from_bytes(&template[..template.len() - 1])))
}

extern "C" fn remove_at_exit() {
    if let Some(scratch) = SCRATCH_BASE.get() {
        let _ = std::fs::remove_dir_all(scratch);
    }
}

static SCRATCH_BASE: OnceLock<PathBuf> = OnceLock::new();

impl Scratch {
    /// The parents a sequence may create in or sweep.
    pub fn parents(&self) -> [&CStr; 4] {
        [&self.short, &self.medium, &self.deep, &self.well_known]
    }

    /// Fuzzed bytes below the base directory, with `..` defused: no input reaches outside it.
    pub fn below(&self, tail: &[u8]) -> CString {
        let mut bytes = self.base.as_os_str().as_bytes().to_vec();
        bytes.push(b'/');
        bytes.extend(defuse(tail));
        CString::new(bytes).unwrap()
    }

    /// Asserts that a sequence left nothing behind: nothing but the lock files of well-known
    /// paths (regular files, 0600, never removed by usock: removed here), wherever a fuzzed
    /// path put them (a name with `..` reaches the base and the parents too).
    pub fn assert_clean(&self) {
        for parent in [&self.short, &self.medium, &self.deep, &self.well_known] {
            let left = without_lock_files(entries(parent));
            assert!(left.is_empty(), "left in {parent:?}: {left:?}");
        }
        let extra: Vec<_> = without_lock_files(entries_of(&self.base))
            .into_iter()
            .filter(|p| {
                !self
                    .parents()
                    .iter()
                    .any(|q| p.as_os_str().as_bytes() == q.to_bytes())
            })
            .collect();
        assert!(extra.is_empty(), "left in {:?}: {extra:?}", self.base);
    }

    /// After a failed sequence (the replay goes on with the next): empty every parent.
    pub fn reset(&self) {
        for entry in entries_of(&self.base) {
            let meta = std::fs::symlink_metadata(&entry).unwrap();
            if meta.is_dir() {
                let _ = std::fs::remove_dir_all(&entry);
            } else {
                let _ = std::fs::remove_file(&entry);
            }
        }
        for parent in self.parents() {
            let path = Path::new(std::ffi::OsStr::from_bytes(parent.to_bytes()));
            std::fs::create_dir(path).unwrap();
            std::fs::set_permissions(path, PermissionsExt::from_mode(0o700)).unwrap();
        }
    }
}

/// Removes the scratch tree now (the replay, before it exits).
pub fn remove() {
    let _ = std::fs::remove_dir_all(&scratch().base);
}

/// Fuzzed path bytes with every `..` broken up, so that they cannot climb out of the scratch
/// directory they are appended to.
pub fn defuse(tail: &[u8]) -> Vec<u8> {
    let mut out = tail.to_vec();
    for i in 0..out.len().saturating_sub(1) {
        if out[i] == b'.' && out[i + 1] == b'.' {
            out[i] = b'_';
        }
    }
    out
}

fn entries(dir: &CStr) -> Vec<PathBuf> {
    entries_of(Path::new(std::ffi::OsStr::from_bytes(dir.to_bytes())))
}

fn entries_of(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// The number of descriptors this process has open.
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").unwrap().count()
}

/// Whether anything is at `path` (not following a final symbolic link).
pub fn exists(path: &CStr) -> bool {
    std::fs::symlink_metadata(Path::new(std::ffi::OsStr::from_bytes(path.to_bytes()))).is_ok()
}

/// The type and permission bits of what is at `path`, and its owner.
pub fn mode_of(path: &CStr) -> (std::fs::FileType, u32, u32) {
    let meta = std::fs::symlink_metadata(Path::new(std::ffi::OsStr::from_bytes(path.to_bytes())))
        .unwrap_or_else(|e| panic!("{path:?}: {e}"));
    (meta.file_type(), meta.mode() & 0o7777, meta.uid())
}

pub fn is_socket(kind: std::fs::FileType) -> bool {
    kind.is_socket()
}

/// Removes the lock files of well-known paths among `entries` (`*.lock`, regular files of mode
/// 0600, which usock never removes) and returns the rest.
fn without_lock_files(entries: Vec<PathBuf>) -> Vec<PathBuf> {
    entries
        .into_iter()
        .filter(|entry| {
            let lock = std::fs::symlink_metadata(entry).is_ok_and(|meta| {
                entry.as_os_str().as_bytes().ends_with(b".lock")
                    && meta.file_type().is_file()
                    && meta.mode() & 0o777 == 0o600
            });
            if lock {
                std::fs::remove_file(entry).unwrap();
            }
            !lock
        })
        .collect()
}
