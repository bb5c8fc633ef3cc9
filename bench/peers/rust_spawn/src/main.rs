//! Spawn+wait latency through Rust's std::process::Command (std only), for
//! bench/spawn_peers.sh. std on Linux uses posix_spawn when nothing needs a
//! pre-exec hook, else fork; either way a round trip here is what a Rust
//! program pays. Prints one JSON object per line:
//!   {"peer": "rust Command::status", "target": ..., "median_us": ..., ...}
//! Usage: rust_spawn RUNS NAME=PATH [NAME=PATH...]
use std::process::Command;
use std::time::Instant;

fn summarize(peer: &str, target: &str, mut us: Vec<f64>) {
    us.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = us.len();
    let median = if n % 2 == 1 { us[n / 2] } else { (us[n / 2 - 1] + us[n / 2]) / 2.0 };
    println!(
        "{{\"peer\": \"{}\", \"target\": \"{}\", \"median_us\": {:.3}, \"min_us\": {:.3}, \"max_us\": {:.3}, \"runs\": {}}}",
        peer, target, median, us[0], us[n - 1], n
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() < 3 {
        eprintln!("usage: rust_spawn RUNS NAME=PATH [NAME=PATH...]");
        std::process::exit(2);
    }
    let runs: usize = args[1].parse().expect("RUNS must be a number");
    for spec in &args[2..] {
        let (name, path) = spec.split_once('=').expect("targets are NAME=PATH");
        // Interleave the two calls so drift hits both alike; one warm-up each.
        let mut status_us = Vec::with_capacity(runs);
        let mut spawn_us = Vec::with_capacity(runs);
        for i in 0..=runs {
            let t0 = Instant::now();
            let st = Command::new(path).status().expect("spawn failed");
            let t1 = Instant::now();
            assert!(st.success(), "{} exited {:?}", path, st);
            let t2 = Instant::now();
            let mut child = Command::new(path).spawn().expect("spawn failed");
            let st2 = child.wait().expect("wait failed");
            let t3 = Instant::now();
            assert!(st2.success(), "{} exited {:?}", path, st2);
            if i > 0 {
                status_us.push((t1 - t0).as_secs_f64() * 1e6);
                spawn_us.push((t3 - t2).as_secs_f64() * 1e6);
            }
        }
        summarize("rust Command::status", name, status_us);
        summarize("rust Command::spawn+wait", name, spawn_us);
    }
}
