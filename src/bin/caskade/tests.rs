//! Unit tests of the `caskade` binary: CLI parsing, key generation, plan
//! validation, latency recording, report rendering, and one whole run at toy
//! sizes. (They live here, not in the shared modules, because
//! `benches/concurrent_load.rs` includes those modules by path and is built
//! with `cfg(test)` by `--all-targets` without running `#[test]`s.)

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::bench::{self, Machine, Report, fs_type};
use crate::plan::{Plan, PutDurability, SplitMix, Workload, bytes_needed, fill_key};
use crate::progress::Progress;
use crate::report::{self, Target, fmt_duration, fmt_rate, quote};
use crate::stats::{Limit, Measurement, Recorder};
use crate::{Cli, Command};
use clap::Parser;

/// A run of `workloads` only, at toy sizes, in a kept directory: the
/// fill comes along when a workload needs it, and nothing else runs.
#[test]
fn chosen_workloads_run_alone() {
    let rt = runtime();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut plan = toy(vec![Workload::Get, Workload::Durable]);
    let r = bench::run(&plan, &rt, Some(&data), &Progress::quiet()).unwrap();
    let ids: Vec<&str> = r.phases.iter().map(|m| m.id.as_str()).collect();
    #[rustfmt::skip]
    let expected = [
        "fill", "get_t1", "get_t3", "get_offloaded_t1", "durable_put_t1", "durable_put_t3",
    ];
    assert_eq!(ids, expected);
    assert!(r.reopen.is_none() && r.memory.is_none() && r.space.is_none());
    for m in &r.phases {
        assert!(m.ops > 0 && m.latency.count() > 0, "{} did nothing", m.id);
    }
    let phase = |id: &str| r.phases.iter().find(|m| m.id == id).unwrap();
    assert_eq!(phase("fill").ops, 2000);
    assert_eq!(phase("fill").latency.count(), 7, "one sample per batch");
    let d3 = phase("durable_put_t3");
    assert_eq!(
        (d3.ops, d3.latency.count()),
        (15, 15),
        "5 ops x 3 tasks over 2 rounds"
    );
    let table = report::table(&r);
    assert!(table.contains("put, Always (durable), 3 task(s)"), "{table}");
    assert!(table.contains("not measured"), "no 16-task phase ran: {table}");
    assert!(
        !table.contains("reopen ") && !table.contains("space amplification"),
        "{table}"
    );
    let json = report::json(&r);
    assert!(json.contains("\"id\": \"durable_put_t3\""), "{json}");
    assert!(json.contains("\"met\": null"), "{json}");
    assert!(
        json.contains("\"workloads\": [\"fill\", \"get\", \"durable\"]"),
        "{json}"
    );
    for none in ["reopen_ns", "memory", "space"] {
        assert!(json.contains(&format!("\"{none}\": null,")), "{none}: {json}");
    }
    // The data was kept: the catalog lists the benchmark's partitions, each
    // in its own 16-hex-digit directory, and nothing else is there.
    let db_dir = data.join("db");
    let (names, dirs) = rt.block_on(async {
        let db = caskade::Db::open(&db_dir).await.unwrap();
        let names = db.list_partitions();
        let dirs: BTreeSet<PathBuf> = names
            .iter()
            .map(|n| db.describe_partition(n).unwrap().dir.expect("durable"))
            .collect();
        db.close().await.unwrap();
        (names, dirs)
    });
    assert_eq!(names, ["bench", "durable-t1", "durable-t3"]);
    let on_disk: BTreeSet<PathBuf> = std::fs::read_dir(db_dir.join("partitions"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(on_disk, dirs);
    for d in &dirs {
        let leaf = d.file_name().unwrap().to_str().unwrap();
        assert!(
            leaf.len() == 16 && leaf.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
            "{leaf}"
        );
        assert!(d.join("MANIFEST").is_file(), "{d:?}");
    }
    assert!(db_dir.join("CATALOG").is_file());
    assert!(!data.join("raw").exists() && !data.join("space").exists());
    // A second run into the same directory is refused.
    assert!(bench::run(&plan, &rt, Some(&data), &Progress::quiet()).is_err());

    // The raw limits alone: L2 runs by itself, in rounds; no database.
    plan.workloads = vec![Workload::Limits];
    let r = bench::run(&plan, &rt, None, &Progress::quiet()).unwrap();
    let ids: Vec<&str> = r.phases.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(ids, ["L1", "L3", "L3x2", "L2"]);
    assert_eq!(r.phases[3].ops, 5);
    assert_eq!(r.phases[3].note, "in 2 rounds");
    assert!(!r.data_dir.exists(), "the temporary directory is removed");
}

/// `--durability` reaches the put phases and the mixed writer (the
/// database is reopened with it after the gets), and their names say so.
#[test]
fn put_durability_is_applied_and_named() {
    let rt = runtime();
    for (d, shown) in [
        (PutDurability::Interval(Duration::from_millis(5)), "Interval 5 ms"),
        (PutDurability::Always, "Always"),
    ] {
        let mut plan = toy(vec![Workload::Put, Workload::Mixed]);
        plan.durability = d;
        let r = bench::run(&plan, &rt, None, &Progress::quiet()).unwrap();
        let names: Vec<&str> = r.phases.iter().map(|m| m.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "fill, batches of 300, OsBuffered".to_string(),
                format!("put, {shown}, 1 task(s)"),
                format!("put, {shown}, 3 task(s)"),
                "mixed: get, 2 reader task(s)".to_string(),
                format!("mixed: put, {shown}, 1 writer task"),
            ]
        );
        assert!(r.phases.iter().all(|m| m.ops > 0), "{:?}", r.phases);
        // The 250 k ops/s target is about buffered puts only.
        assert_eq!(report::targets(&r)[2].measured, None);
        assert!(report::json(&r).contains(&format!("\"durability\": \"{}\"", d.arg())));
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Toy sizes for whole runs of `workloads`.
fn toy(workloads: Vec<Workload>) -> Plan {
    Plan {
        workloads,
        keys: 2000,
        key_size: 16,
        value_size: 100,
        get_tasks: vec![1, 3],
        put_tasks: vec![1, 3],
        durable_tasks: vec![1, 3],
        durability: PutDurability::Buffered,
        workers: 2,
        duration: Duration::from_millis(30),
        durable_ops: 5,
        rounds: 2,
        batch: 300,
        overwrites: 3,
    }
}

fn plan() -> Plan {
    Plan {
        keys: 1000,
        get_tasks: vec![1, 16],
        durable_tasks: vec![1, 16],
        duration: Duration::from_millis(10),
        durable_ops: 10,
        rounds: 3,
        batch: 100,
        ..toy(Workload::ALL.to_vec())
    }
}

#[test]
fn keys_are_distinct_and_sized() {
    let mut seen = std::collections::HashSet::new();
    let mut buf = vec![0u8; 2];
    for i in 0..65_536 {
        fill_key(i, &mut buf);
        assert!(seen.insert(buf.clone()), "key {i} repeats");
    }
    let mut long = vec![0u8; 16];
    fill_key(0x0102, &mut long);
    assert_eq!(&long[..8], &[b'k'; 8]);
    assert_eq!(&long[8..], &0x0102u64.to_be_bytes());
}

#[test]
fn validate_rejects_keys_too_small_for_the_count() {
    assert!(plan().validate().is_ok());
    let mut p = plan();
    p.key_size = 1;
    assert!(p.validate().unwrap_err().contains("key-size"));
    p.keys = 256;
    p.durable_ops = 1;
    p.rounds = 1;
    assert!(p.validate().is_ok());
    p.keys = 257;
    assert!(p.validate().is_err());
    let mut p = plan();
    p.put_tasks = vec![2, 0];
    assert!(p.validate().unwrap_err().contains("--put-tasks"));
    let mut p = plan();
    p.durable_tasks = vec![];
    assert!(p.validate().unwrap_err().contains("--durable-tasks"));
    let mut p = plan();
    p.workloads = vec![];
    assert!(p.validate().unwrap_err().contains("--workloads"));
    let mut p = plan();
    p.overwrites = 0;
    assert!(p.validate().unwrap_err().contains("--overwrites"));
    p.workloads = vec![Workload::Get];
    assert!(p.validate().is_ok(), "overwrites only matter to space");
    // Durable keys go up to the largest durable task count x --durable-ops.
    let mut p = plan();
    p.keys = 200;
    p.key_size = 1;
    p.durable_ops = 16;
    p.rounds = 1;
    assert!(p.validate().is_ok(), "16 x 16 = 256 keys fit one byte");
    p.durable_tasks = vec![17];
    assert!(p.validate().unwrap_err().contains("key-size"), "17 x 16 do not");
}

#[test]
fn durable_rounds_add_up_to_the_ops_per_task() {
    let p = plan();
    let rounds: Vec<_> = (0..p.rounds).map(|r| p.durable_round(r)).collect();
    assert_eq!(rounds, [(0, 3), (3, 3), (6, 4)]);
    let mut q = plan();
    q.rounds = 0;
    assert!(q.validate().unwrap_err().contains("rounds"));
    q.rounds = 11;
    assert!(q.validate().is_err());
}

#[test]
fn bytes_needed_counts_big_endian_bytes() {
    assert_eq!(bytes_needed(0), 1);
    assert_eq!(bytes_needed(255), 1);
    assert_eq!(bytes_needed(256), 2);
    assert_eq!(bytes_needed(u64::MAX), 8);
}

#[test]
fn splitmix_spreads_over_the_range() {
    let mut r = SplitMix::new(7);
    let mut hits = [0u32; 10];
    for _ in 0..10_000 {
        hits[r.below(10) as usize] += 1;
    }
    assert!(hits.iter().all(|&h| (800..1200).contains(&h)), "{hits:?}");
    assert_eq!(plan().record_size(), 116);
    assert_eq!(plan().max_durable_tasks(), 16);
    assert_eq!(plan().mixed_readers(), 15);
}

#[test]
fn quantiles_come_from_the_recorded_samples() {
    let mut a = Recorder::new();
    for us in 1..=100 {
        a.record(Duration::from_micros(us));
    }
    let mut b = Recorder::new();
    b.record(Duration::from_millis(5));
    a.merge(&b);
    assert_eq!(a.count(), 101);
    let p50 = a.quantile(0.5).as_micros();
    assert!((49..=52).contains(&p50), "p50 {p50}");
    assert!(a.max() >= Duration::from_micros(4995), "max {:?}", a.max());
    let m = Measurement {
        id: "x".into(),
        name: "x".into(),
        tasks: 1,
        ops: 500,
        elapsed: Duration::from_millis(250),
        latency: a,
        unit: "op".into(),
        limit: None,
        note: String::new(),
    };
    assert!((m.ops_per_sec() - 2000.0).abs() < 1e-6);
}

#[test]
fn formats_durations_and_rates() {
    assert_eq!(fmt_duration(Duration::from_nanos(412)), "412 ns");
    assert_eq!(fmt_duration(Duration::from_nanos(12_340)), "12.3 µs");
    assert_eq!(fmt_duration(Duration::from_micros(1_204)), "1.20 ms");
    assert_eq!(fmt_duration(Duration::from_millis(2_350)), "2.35 s");
    assert_eq!(fmt_rate(1_234_567.0), "1.23 M");
    assert_eq!(fmt_rate(456_700.0), "456.7 k");
    assert_eq!(fmt_rate(812.4), "812");
}

#[test]
fn quotes_json_strings() {
    assert_eq!(quote("a\"b\\c\nd\u{1}"), "\"a\\\"b\\\\c\\nd\\u0001\"");
}

#[test]
fn targets_compare_measured_with_goal() {
    let t = Target {
        name: "x",
        measured: Some(7.9),
        goal: 8.0,
        unit: "x L2",
        at_least: true,
    };
    assert_eq!(t.met(), Some(false));
    assert_eq!(t.show(9.0), "9.00x L2");
    assert_eq!(t.relation(), ">=");
    let t = Target { measured: None, ..t };
    assert_eq!(t.met(), None);
    // A ceiling: at or below the goal is met.
    let c = |measured| Target {
        name: "y",
        measured: Some(measured),
        goal: 250.0,
        unit: "ms",
        at_least: false,
    };
    assert_eq!(
        (c(120.0).met(), c(250.0).met(), c(251.0).met()),
        (Some(true), Some(true), Some(false))
    );
    assert_eq!(c(1.0).relation(), "<=");
    assert_eq!(c(1.0).show(80.0), "80.0 ms");
}

#[test]
fn fs_type_takes_the_longest_matching_mount() {
    let mounts = "/dev/vda / ext4 rw 0 0\ntmpfs /tmp tmpfs rw 0 0\nproc /proc proc rw 0 0\n";
    assert_eq!(fs_type(Path::new("/tmp/x/y"), mounts), "tmpfs (rw)");
    assert_eq!(fs_type(Path::new("/work/main"), mounts), "ext4 (rw)");
    assert_eq!(fs_type(Path::new("/tmpx"), mounts), "ext4 (rw)");
    assert_eq!(fs_type(Path::new("/work"), ""), "unknown");
}

fn phase(id: &str, ops: u64, limit: Option<Limit>) -> Measurement {
    let mut latency = Recorder::new();
    latency.record(Duration::from_micros(1));
    Measurement {
        id: id.into(),
        name: id.into(),
        tasks: 1,
        ops,
        elapsed: Duration::from_secs(1),
        latency,
        unit: "op".into(),
        limit,
        note: String::new(),
    }
}

#[test]
fn ratios_and_targets_follow_the_measured_rates() {
    let r = Report {
        plan: plan(),
        machine: Machine {
            cpus: 2,
            kernel: "k".into(),
            memory: "m".into(),
            fs_type: "ext4".into(),
        },
        data_dir: "/nowhere".into(),
        phases: vec![
            phase("L2", 200, None),
            phase("L3", 2_000_000, None),
            phase("get_t1", 1_200_000, Some(Limit::L3)),
            phase("durable_put_t16", 1_500, Some(Limit::L2)),
        ],
        reopen: Some(Duration::from_millis(1)),
        memory: None,
        space: None,
        total: Duration::from_secs(1),
        load: ("1.0".into(), "2.0".into()),
    };
    assert_eq!(report::limit_rate(&r, Limit::L2), Some(200.0));
    let x = report::ratio(&r, &r.phases[3]).unwrap();
    assert!((x - 7.5).abs() < 1e-9, "{x}");
    let t = report::targets(&r);
    // Reopen, space and memory are judged only on the default data shape.
    assert_eq!(
        t.iter().map(Target::met).collect::<Vec<_>>(),
        [Some(true), Some(false), None, None, None]
    );
    let table = report::table(&r);
    assert!(table.contains("7.500x L2"), "{table}");
    let mut r = r;
    (r.plan.keys, r.plan.key_size, r.plan.value_size) = (1_000_000, 16, 100);
    let t = report::targets(&r);
    assert_eq!(
        t.iter().map(Target::met).collect::<Vec<_>>(),
        [Some(true), Some(false), Some(true), None, None]
    );
    let table = report::table(&r);
    assert!(table.contains("7.500x L2"), "{table}");
    assert!(table.contains("MISSED") && table.contains("MET"), "{table}");
}

/// `caskade partitions` at toy sizes: both benchmarks run, and their
/// results agree with the settings and with each other.
#[test]
fn tiny_partitions_run_is_consistent() {
    #[rustfmt::skip]
    let cli = Cli::try_parse_from([
        "caskade", "partitions", "--cold-keys", "10000", "--rounds", "3", "--partitions", "20",
        "--keys-per-partition", "50", "--max-open", "4", "--duration", "0.5",
    ])
    .unwrap();
    let Command::Partitions(args) = cli.command else {
        panic!("not partitions")
    };
    assert_eq!((args.value_size, args.tasks, args.write_percent), (100, 16, 10));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let r = crate::partitions::run(&args, &rt, &|_| {}).unwrap();
    assert_eq!(r.cold.len(), 3, "one timed cold open per round");
    assert!(r.cold.iter().chain([&r.scan]).all(|d| !d.is_zero()));
    // 10,000 records of 116 bytes: an active file over 1 MiB gets a hint on eviction.
    assert_eq!(r.hints, 1, "the hint path was not exercised");
    let [evicting, all] = &r.runs;
    assert_eq!((evicting.max_open, all.max_open), (4, 20));
    assert!(evicting.evictions > 0 && evicting.reopens > 0, "{evicting:?}");
    for run in &r.runs {
        assert!(
            run.ops() > 0 && run.elapsed >= Duration::from_millis(500),
            "{run:?}"
        );
        assert!(
            run.puts.count() > 0 && run.gets.count() > run.puts.count(),
            "{run:?}"
        );
    }
    assert_eq!((all.evictions, all.reopens, all.open_at_end), (0, 0, 20));
    assert!(!r.data_dir.exists(), "the temporary directory is removed");
    let table = crate::partitions::table(&r);
    assert!(
        table.contains("with eviction") && table.contains("(median): M"),
        "{table}"
    );
    let json = crate::partitions::json(&r);
    let evictions = format!(
        "\"id\": \"evicting\", \"max_open\": 4, \"ops\": {},",
        evicting.ops()
    );
    assert!(json.contains(&evictions), "{json}");
    assert!(
        json.contains(&format!("\"evictions\": {},", evicting.evictions)),
        "{json}"
    );
    // Invalid settings are refused before anything runs.
    let bad = Cli::try_parse_from(["caskade", "partitions", "--zipf-s=-1"]).unwrap();
    let Command::Partitions(bad) = bad.command else {
        panic!("not partitions")
    };
    assert!(crate::partitions::run(&bad, &rt, &|_| {}).is_err());
    assert!(Cli::try_parse_from(["caskade", "partitions", "--write-percent", "101"]).is_err());
}
