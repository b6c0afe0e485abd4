//! Runs the fuzz target's sequences on stable Rust, without libFuzzer: the seed sequences,
//! the files given (a corpus directory, or inputs libFuzzer saved), and `--generated N`
//! variations of the seeds made by a fixed pseudo-random generator (the same each run, unless
//! `--seed S` picks another sequence).
//! Prints one line per failure and closes with `fuzz: N passed, M failed`; exits 1 on a
//! failure. `--write-seeds DIR` writes the seed sequences as files (for libFuzzer's corpus).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use usock_fuzz::{run, scratch, seeds::seeds};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut inputs: Vec<(String, Vec<u8>)> = seeds()
        .into_iter()
        .map(|(name, data)| (format!("seed {name}"), data))
        .collect();
    let mut generated = 0;
    let mut seed = 0x9e37_79b9_7f4a_7c15;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--write-seeds" => {
                return write_seeds(&PathBuf::from(args.next().expect("a directory")));
            }
            "--hex" => inputs.push(("hex".into(), unhex(&args.next().expect("hex bytes")))),
            "--generated" => generated = args.next().and_then(|n| n.parse().ok()).expect("a count"),
            "--seed" => seed = args.next().and_then(|n| n.parse().ok()).expect("a number"),
            path => inputs.extend(read_inputs(Path::new(path))),
        }
    }
    inputs.extend(variations(&inputs, generated, seed | 1));
    let failed = inputs
        .iter()
        .filter(|(name, data)| !passes(name, data))
        .count();
    scratch::remove();
    println!("fuzz: {} passed, {failed} failed", inputs.len() - failed);
    std::process::exit(i32::from(failed > 0));
}

fn passes(name: &str, data: &[u8]) -> bool {
    match catch_unwind(AssertUnwindSafe(|| run(data))) {
        Ok(()) => true,
        Err(_) => {
            eprintln!("FAILED {name}: input {}", hex(data));
            scratch::scratch().reset();
            false
        }
    }
}

fn read_inputs(path: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<PathBuf> = if path.is_dir() {
        std::fs::read_dir(path)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect()
    } else {
        vec![path.to_path_buf()]
    };
    files.sort();
    files
        .into_iter()
        .map(|f| (f.display().to_string(), std::fs::read(&f).unwrap()))
        .collect()
}

/// `n` inputs: a seed, then bytes from a fixed xorshift generator (some runs short, some long).
fn variations(bases: &[(String, Vec<u8>)], n: usize, seed: u64) -> Vec<(String, Vec<u8>)> {
    let mut state = seed;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..n)
        .map(|i| {
            let (_, base) = &bases[next() as usize % bases.len()];
            let keep = next() as usize % (base.len() + 1);
            let extra = next() as usize % 200;
            let mut data = base[..keep].to_vec();
            data.extend((0..extra).map(|_| next() as u8));
            (format!("generated #{i}"), data)
        })
        .collect()
}

fn write_seeds(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for (name, data) in seeds() {
        std::fs::write(dir.join(name), data).unwrap();
    }
    println!("wrote {} seeds to {}", seeds().len(), dir.display());
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Vec<u8> {
    (0..text.len() / 2)
        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}
