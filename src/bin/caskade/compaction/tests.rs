//! Tests of `caskade compaction`: option parsing, and whole runs at toy
//! sizes whose results must agree with the settings and with each other.

use std::time::Duration;

use clap::Parser;

use super::cpu::{Role, ticks};
use super::report::{Phase, Ratio, median};
use super::{CompactionArgs, RateLimit, Variant, parse_size};
use crate::{Cli, Command};

fn args(extra: &[&str]) -> CompactionArgs {
    let cli = Cli::try_parse_from(["caskade", "compaction"].iter().chain(extra)).unwrap();
    let Command::Compaction(a) = cli.command else {
        panic!("not compaction")
    };
    a
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn cli_defaults_follow_the_engine_and_lists_parse() {
    let a = args(&[]);
    let engine = caskade::CompactionOptions::default();
    assert_eq!(a.thresholds(), engine);
    assert_eq!(
        (a.keys, a.key_size, a.value_size, a.overwrites),
        (1_000_000, 16, 100, 3)
    );
    assert_eq!(a.rate_limits, [RateLimit(None)]);
    assert_eq!(a.raw_bytes(), 116_000_000);
    assert_eq!(a.step_keys(), 250_000);
    assert!(a.validate().is_ok());
    let a = args(&[
        "--rate-limits",
        "none,32M,1.5G",
        "--min-dead-bytes",
        "512K",
        "--durability",
        "always",
    ]);
    let want = [None, Some(32 << 20), Some(3 << 29)].map(RateLimit);
    assert_eq!(a.rate_limits, want);
    assert_eq!(a.min_dead_bytes, 512 << 10);
    assert_eq!(a.durability.name(), "always");
    assert_eq!(parse_size("1234"), Ok(1234));
    assert!(parse_size("-1M").is_err() && parse_size("x").is_err());
    for bad in [
        &["--rate-limits", "512K"][..],
        &["--overwrite-fraction", "0"],
        &["--min-dead-ratio", "1.5"],
        &["--keys", "70000", "--key-size", "2"],
    ] {
        assert!(args(bad).validate().is_err(), "{bad:?}");
    }
}

#[test]
fn medians_and_ratios() {
    assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
    assert_eq!(median(vec![4.0, 1.0]), 2.5);
    assert!(median(Vec::new()).is_nan());
    let phase = |round, variant, p99_us: u64, puts: u64| {
        let mut p = Phase {
            round,
            variant,
            elapsed: Duration::from_secs(1),
            ..Phase::default()
        };
        p.gets.record(Duration::from_micros(p99_us));
        for _ in 0..puts {
            p.puts.record(Duration::from_micros(1));
        }
        p
    };
    let none = Some(Variant {
        limit: RateLimit(None),
        nice: 10,
    });
    let r = super::Report {
        args: args(&[]),
        data_dir: "/nowhere".into(),
        machine: ["ext4".into(), "1".into(), "2".into()],
        fill: super::Fill::default(),
        phases: vec![
            phase(1, None, 10, 100),
            phase(1, none, 30, 50),
            phase(2, None, 10, 100),
            phase(2, none, 10, 100),
            phase(3, None, 20, 200),
        ],
        floor: None,
        total: Duration::from_secs(1),
    };
    let ratios = r.ratios();
    assert_eq!(ratios.len(), 2);
    let Ratio { p99, writes, .. } = ratios[0];
    assert!(
        (p99 - 3.0).abs() < 0.01 && (writes - 0.5).abs() < 1e-9,
        "{ratios:?}"
    );
    // Round 2 against baselines 2 and 3: p99 10 / 20 µs, puts 100 / 150 per s.
    let Ratio { p99, writes, .. } = ratios[1];
    assert!(
        (p99 - 0.5).abs() < 0.01 && (writes - 2.0 / 3.0).abs() < 1e-9,
        "{ratios:?}"
    );
    let [(_, p99, writes)] = r.medians()[..] else {
        panic!("one variant")
    };
    assert!((p99 - 1.75).abs() < 0.01 && (writes - 7.0 / 12.0).abs() < 1e-9);
    let met: Vec<bool> = r.targets().iter().map(|t| t.3).collect();
    // Disk: nothing measured, ratio 0 <= 1.5; p99 1.75 <= 2; writes 0.58 < 0.7.
    assert_eq!(met, [true, true, false]);
}

/// A whole run at toy sizes with eager thresholds: the scheduler compacts
/// during the overwrites, every phase measures load, every compacting
/// window is one compaction that did work, and the table and JSON carry
/// the same figures.
#[test]
fn tiny_run_is_consistent() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    #[rustfmt::skip]
    let a = args(&[
        "--keys", "20000", "--overwrites", "2", "--batch", "500", "--readers", "3",
        "--duration", "0.3", "--rounds", "2", "--rate-limits", "none,64M", "--nices", "10,0",
        "--min-dead-ratio", "0.3", "--min-dead-bytes", "0", "--min-space-saving", "0",
        "--check-interval", "0.02", "--settle-timeout", "10", "--dir", data.to_str().unwrap(),
    ]);
    let r = super::run(&a, &runtime(), &|_| {}).unwrap();
    let f = &r.fill;
    assert_eq!(f.rates.len(), 3, "fill + 2 overwrite rounds");
    assert!(f.rates.iter().all(|&x| x > 0.0));
    assert!(f.settled, "the scheduler did not settle");
    assert!(!f.compactions.is_empty(), "no scheduled compaction");
    assert_eq!(f.scheduled, f.compactions.len() as u64);
    assert!(
        f.compactions
            .iter()
            .all(|c| c.performed() && c.bytes_after < c.bytes_before)
    );
    let d = &f.disk;
    assert_eq!(d.keys, 20_000);
    // Every live record: a 25-byte header, key and value.
    assert_eq!(d.live_bytes, 20_000 * (25 + 16 + 100));
    assert!(d.data_bytes >= d.live_bytes && d.footprint() > d.data_bytes);
    assert!(d.data_files >= 1 && d.hint_files >= 1);
    // The peak came during the overwrites, before the scheduler reclaimed them.
    assert!(
        f.peak >= d.footprint().min(d.live_bytes) && f.peak > d.live_bytes,
        "{}",
        f.peak
    );
    // Settled: below the thresholds (dead < 0.3 of all bytes).
    assert!(
        (d.dead_bytes as f64) < 0.3 * (d.live_bytes + d.dead_bytes) as f64,
        "{d:?}"
    );
    assert!(d.ratio() > 1.0 && d.ratio() < 2.0, "{d:?}");
    // Just below the thresholds: more dead bytes, still below them, no compaction.
    let (near, started) = f.near.as_ref().expect("measured");
    assert!(!started && near.dead_bytes > d.dead_bytes, "{near:?}");
    assert!((near.dead_bytes as f64) < 0.3 * (near.live_bytes + near.dead_bytes) as f64);
    assert!(near.ratio() > d.ratio(), "{near:?}");
    let (floor, _) = r.floor.as_ref().unwrap();
    assert_eq!((floor.keys, floor.live_bytes), (d.keys, d.live_bytes));
    assert!(floor.footprint() <= d.footprint() + d.live_bytes / 2, "{floor:?}");
    // Rounds x (baseline, then every rate limit x nice), in order.
    let kinds: Vec<_> = r.phases.iter().map(|p| (p.round, p.variant)).collect();
    let v = |limit, nice| {
        Some(Variant {
            limit: RateLimit(limit),
            nice,
        })
    };
    let (none, none0, limited, limited0) = (
        v(None, 10),
        v(None, 0),
        v(Some(64 << 20), 10),
        v(Some(64 << 20), 0),
    );
    assert_eq!(
        kinds,
        [
            (1, None),
            (1, none),
            (1, none0),
            (1, limited),
            (1, limited0),
            (2, None),
            (2, none),
            (2, none0),
            (2, limited),
            (2, limited0),
            (3, None)
        ]
    );
    for p in &r.phases {
        assert!(
            p.windows >= 1 && p.gets.count() > 0 && p.puts.count() > 0,
            "{p:?}"
        );
        assert!(
            p.elapsed >= Duration::from_millis(300) || p.windows == super::MAX_WINDOWS,
            "{p:?}"
        );
        assert!(p.get_q(0.5) <= p.get_q(0.99) && p.get_q(0.99) <= p.gets.max());
        match p.variant {
            None => assert!(p.compactions.is_empty()),
            Some(_) => {
                assert_eq!(p.compactions.len(), p.windows);
                assert!(
                    p.compactions
                        .iter()
                        .all(|c| c.performed() && c.records_copied > 0)
                );
                let (written, read) = p.compaction_mib_per_sec();
                assert!(written > 0.0 && read >= written, "{written} {read}");
            }
        }
    }
    // The sampler saw the workers run the load, and accounts for no more
    // CPU than the process used.
    let workers: Duration = r.phases.iter().map(|p| p.threads[Role::Workers as usize]).sum();
    assert!(workers > Duration::ZERO);
    for p in &r.phases {
        let roles: Duration = p.threads.iter().sum();
        assert!(
            roles <= p.cpu + Duration::from_millis(100 * p.windows as u64),
            "{p:?}"
        );
    }
    let ratios = r.ratios();
    assert_eq!(ratios.len(), 8);
    // Round 1 is compared with baselines 1 and 2 merged.
    let (gets, rate) = r.baseline(1).unwrap();
    assert_eq!(gets.count(), r.phases[0].gets.count() + r.phases[5].gets.count());
    let puts = (r.phases[0].puts.count() + r.phases[5].puts.count()) as f64;
    let secs = (r.phases[0].elapsed + r.phases[5].elapsed).as_secs_f64();
    assert!((rate - puts / secs).abs() < 1e-6 * rate, "{rate}");
    assert!(ratios.iter().all(|x| x.p99 > 0.0 && x.writes > 0.0), "{ratios:?}");
    let table = super::table(&r);
    assert!(table.contains("compacting, limit 64.0 MiB/s, nice 0"), "{table}");
    assert!(table.contains(&format!("{:.3}x", d.ratio())), "{table}");
    assert_eq!(
        table.matches("MET").count() + table.matches("MISSED").count(),
        9,
        "{table}"
    );
    let json = super::json(&r);
    assert!(
        json.contains(&format!("\"live_bytes\": {}", d.live_bytes)),
        "{json}"
    );
    assert!(json.contains("\"rate_limit\": 67108864"), "{json}");
    assert_eq!(json.matches("\"kind\": \"baseline\"").count(), 3, "{json}");
    // The data was kept, and a second run into the same directory is refused.
    assert!(data.join("db").is_dir());
    assert!(super::run(&a, &runtime(), &|_| {}).is_err());
}

#[test]
fn cpu_ticks_parse_after_the_thread_name() {
    // pid (comm) state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime ...
    let stat = "42 (tokio-runtime-w) S 1 1 1 0 -1 4194368 10 0 0 0 123 45 0 0 20 0 9 0";
    assert_eq!(ticks(stat), 168);
    let odd = "42 (a) b) c) R 1 1 1 0 -1 0 0 0 0 0 7 3 0 0";
    assert_eq!(ticks(odd), 10);
    assert_eq!(ticks(""), 0);
    let (before, t) = (super::cpu::process(), std::time::Instant::now());
    while t.elapsed() < Duration::from_millis(100) {
        std::hint::black_box(t.elapsed());
    }
    // At least one 10 ms tick was spent spinning, even on a busy machine.
    assert!(super::cpu::process() > before);
}
