//! Rust contenders and scale measurements for `make bench` (driven by bench/run.py).
//!
//!   usock-bench cycles usock|tempfile PARENT N      µs per create-bind-close-cleanup cycle
//!   usock-bench threads T PARENT N                  cycles per second with T threads, N each
//!   usock-bench cleanup K PARENT REPEAT             µs to clean a directory holding K sockets
//!   usock-bench cleanup-bare K PARENT REPEAT        the same with a bare lstat + unlink each
//!   usock-bench accept plain|checked N PARENT       µs per connect + accept (+ the policy's
//!                                                   check of the peer) + close
//!   usock-bench sweep-others N PARENT               ms to sweep a parent holding N entries that
//!                                                   are not usock's (the common /tmp case)
//!   usock-bench sweep-dead N PARENT                 ms to sweep a parent holding N directories
//!                                                   left by dead processes (a stale socket each)
//!
//! Each prints one number.

use std::os::unix::net::UnixListener;
use std::path::Path;
use std::time::Instant;

use usock::{PrivateDir, SocketType};

fn usock_cycle(parent: &Path) {
    let dir = PrivateDir::in_parent(parent).unwrap();
    let fd = dir.bind(None, SocketType::Stream, Some(128)).unwrap();
    drop(fd);
    dir.cleanup().unwrap();
}

/// The Rust ecosystem's answer today: tempfile's `Builder::make_in` binds a listener at a
/// random path in the parent (no private directory); dropping it removes the path.
fn tempfile_cycle(parent: &Path) {
    let sock = tempfile::Builder::new()
        .prefix("bench")
        .make_in(parent, |path| UnixListener::bind(path))
        .unwrap();
    drop(sock);
}

fn time_cycles(cycle: fn(&Path), parent: &Path, n: u32) -> f64 {
    for _ in 0..50 {
        cycle(parent);
    }
    let start = Instant::now();
    for _ in 0..n {
        cycle(parent);
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(n)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |i: usize| args.get(i).map(String::as_str).unwrap_or_default();
    let parent = Path::new(arg(3));
    match arg(1) {
        "cycles" => {
            let cycle = match arg(2) {
                "usock" => usock_cycle,
                "tempfile" => tempfile_cycle,
                other => panic!("unknown contender {other}"),
            };
            println!("{:.3}", time_cycles(cycle, parent, arg(4).parse().unwrap()));
        }
        "threads" => {
            let threads: u32 = arg(2).parse().unwrap();
            let n: u32 = arg(4).parse().unwrap();
            let start = Instant::now();
            std::thread::scope(|s| {
                for _ in 0..threads {
                    s.spawn(|| {
                        for _ in 0..n {
                            usock_cycle(parent);
                        }
                    });
                }
            });
            let per_second = f64::from(threads * n) / start.elapsed().as_secs_f64();
            println!("{per_second:.0}");
        }
        "cleanup" => {
            let k: u32 = arg(2).parse().unwrap();
            let repeat: u32 = arg(4).parse().unwrap();
            let mut total = 0.0;
            for _ in 0..repeat {
                let dir = PrivateDir::in_parent(parent).unwrap();
                for i in 0..k {
                    let name = format!("s{i}");
                    drop(
                        dir.bind(Some(name.as_ref()), SocketType::Stream, Some(1))
                            .unwrap(),
                    );
                }
                let start = Instant::now();
                dir.cleanup().unwrap();
                total += start.elapsed().as_secs_f64();
            }
            println!("{:.3}", total * 1e6 / f64::from(repeat));
        }
        "cleanup-bare" => {
            let k: u32 = arg(2).parse().unwrap();
            let repeat: u32 = arg(4).parse().unwrap();
            let mut total = 0.0;
            for r in 0..repeat {
                let dir = parent.join(format!("bare-cleanup-{}-{r}", std::process::id()));
                std::fs::create_dir(&dir).unwrap();
                let paths: Vec<_> = (0..k).map(|i| dir.join(format!("s{i}"))).collect();
                for path in &paths {
                    drop(UnixListener::bind(path).unwrap());
                }
                let start = Instant::now();
                for path in &paths {
                    std::fs::symlink_metadata(path).unwrap();
                    std::fs::remove_file(path).unwrap();
                }
                std::fs::remove_dir(&dir).unwrap();
                total += start.elapsed().as_secs_f64();
            }
            println!("{:.3}", total * 1e6 / f64::from(repeat));
        }
        "accept" => {
            use std::os::fd::AsFd;
            let checked = arg(2) == "checked";
            let n: u32 = arg(3).parse().unwrap();
            let parent = Path::new(arg(4));
            let dir = PrivateDir::in_parent(parent).unwrap();
            let listener = dir.listener(None).unwrap();
            let path = dir.socket_path(None).unwrap();
            let policy = usock::AcceptPolicy::default();
            let once = || {
                let client = std::os::unix::net::UnixStream::connect(&path).unwrap();
                if checked {
                    drop(policy.accept(listener.as_fd()).unwrap());
                } else {
                    drop(listener.accept().unwrap());
                }
                drop(client);
            };
            for _ in 0..200 {
                once();
            }
            let start = Instant::now();
            for _ in 0..n {
                once();
            }
            println!("{:.3}", start.elapsed().as_secs_f64() * 1e6 / f64::from(n));
            drop(listener);
            dir.cleanup().unwrap();
        }
        "sweep-others" | "sweep-dead" => {
            let n: u32 = arg(2).parse().unwrap();
            let place = parent.join(format!("sweep-{}", std::process::id()));
            std::fs::create_dir(&place).unwrap();
            for i in 0..n {
                if arg(1) == "sweep-others" {
                    std::fs::write(place.join(format!("f{i:06}")), b"").unwrap();
                } else {
                    // A directory whose process died: a stale socket inside, nobody holds it.
                    let dir = PrivateDir::in_parent(&place).unwrap();
                    drop(dir.bind(None, SocketType::Stream, Some(1)).unwrap());
                    drop(dir.hand_off().unwrap());
                }
            }
            let start = Instant::now();
            let report = usock::sweep(Some(&place), std::time::Duration::ZERO).unwrap();
            let ms = start.elapsed().as_secs_f64() * 1e3;
            let expected = if arg(1) == "sweep-dead" {
                n as usize
            } else {
                0
            };
            assert_eq!(report.removed.len(), expected, "{:?}", report.kept.first());
            std::fs::remove_dir_all(&place).unwrap();
            println!("{ms:.3}");
        }
        other => panic!("unknown command {other:?}"),
    }
}
