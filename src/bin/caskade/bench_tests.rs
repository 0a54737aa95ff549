//! Tests of `caskade bench`'s options and of one whole run of every
//! workload through the command line, checked through its table and its
//! JSON (parsed by the small parser of `test_json`: the binary has no JSON
//! dependency).
//!
//! The whole run happens in a child process (this test binary, running only
//! [`tiny_run_child`]), because the memory figure is the process's RSS
//! growth over the fill: other tests allocating and freeing at the same time
//! in this process would move it.

use std::path::Path;
use std::time::Duration;

use clap::Parser;
use clap::error::ErrorKind;

use crate::plan::{PutDurability, Workload};
use crate::progress::Progress;
use crate::test_json::Json;
use crate::{BenchArgs, Cli, Command, bench, report};

fn bench_args(args: &[&str]) -> Result<BenchArgs, clap::Error> {
    let cli = Cli::try_parse_from(["caskade", "bench"].iter().chain(args))?;
    match cli.command {
        Command::Bench(a) => Ok(a),
        other => panic!("not bench: {other:?}"),
    }
}

#[test]
fn defaults_are_the_issues_workloads() {
    let p = bench_args(&[]).unwrap().plan();
    assert_eq!(p.workloads, Workload::ALL);
    assert_eq!(
        (p.keys, p.key_size, p.value_size, p.batch),
        (1_000_000, 16, 100, 1000)
    );
    assert_eq!(p.get_tasks, [1, 2, 4, 16]);
    assert_eq!(p.put_tasks, [1, 64]);
    assert_eq!(p.durable_tasks, [1, 16, 64]);
    assert_eq!(p.durability, PutDurability::Buffered);
    assert_eq!(p.overwrites, 3);
    assert_eq!(p.mixed_readers(), 15);
    assert!(p.validate().is_ok());
    // The names clap takes are the names reports print.
    for w in Workload::ALL {
        let parsed = bench_args(&["--workloads", w.name()]).unwrap();
        assert_eq!(parsed.workloads, [w]);
    }
}

#[test]
fn workload_lists_parse_sort_and_pull_in_the_fill() {
    let p = bench_args(&["--workloads", "space,get,get,limits"])
        .unwrap()
        .plan();
    assert_eq!(p.workloads, [Workload::Limits, Workload::Get, Workload::Space]);
    assert!(p.needs_fill() && !p.runs(Workload::Fill));
    assert_eq!(
        p.schedule(),
        [Workload::Limits, Workload::Fill, Workload::Get, Workload::Space]
    );
    let p = bench_args(&["--workloads", "space,durable"]).unwrap().plan();
    assert!(!p.needs_fill());
    assert_eq!(p.schedule(), [Workload::Durable, Workload::Space]);
    let p = bench_args(&["--no-mixed"]).unwrap().plan();
    assert!(!p.runs(Workload::Mixed) && p.runs(Workload::Get));
    let p = bench_args(&["--workloads", "mixed", "--no-mixed"])
        .unwrap()
        .plan();
    assert!(p.validate().unwrap_err().contains("--workloads"));
    for bad in ["gets", "get,,put", "", "GET"] {
        let e = bench_args(&["--workloads", bad]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidValue, "{bad}: {e}");
    }
    let e = bench_args(&["--workloads", "get,bogus"]).unwrap_err().to_string();
    assert!(
        e.contains("bogus") && e.contains("possible values") && e.contains("memory"),
        "{e}"
    );
}

#[test]
fn task_lists_are_separate_and_tasks_sets_them_all() {
    let p = bench_args(&["--get-tasks", "2,8", "--put-tasks", "3", "--durable-tasks", "5,7"])
        .unwrap()
        .plan();
    assert_eq!(
        (p.get_tasks, p.put_tasks, p.durable_tasks),
        (vec![2, 8], vec![3], vec![5, 7])
    );
    let p = bench_args(&["--tasks", "1,4"]).unwrap().plan();
    assert_eq!(
        (p.get_tasks, p.put_tasks, p.durable_tasks),
        (vec![1, 4], vec![1, 4], vec![1, 4])
    );
    let e = bench_args(&["--tasks", "1", "--put-tasks", "2"]).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::ArgumentConflict, "{e}");
    for bad in ["x", "1,-2", "1.5"] {
        let e = bench_args(&["--get-tasks", bad]).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ValueValidation, "{bad}: {e}");
    }
    let p = bench_args(&["--durable-tasks", "4,0"]).unwrap().plan();
    assert!(p.validate().unwrap_err().contains("--durable-tasks"));
}

#[test]
fn durability_parses_its_three_forms() {
    let parse = |s: &str| bench_args(&["--durability", s]).map(|a| a.durability);
    assert_eq!(parse("buffered").unwrap(), PutDurability::Buffered);
    assert_eq!(parse("always").unwrap(), PutDurability::Always);
    let d = parse("interval:25").unwrap();
    assert_eq!(d, PutDurability::Interval(Duration::from_millis(25)));
    assert_eq!(
        d.engine(),
        caskade::Durability::Interval(Duration::from_millis(25))
    );
    assert_eq!(
        (d.show(), d.arg()),
        ("Interval 25 ms".into(), "interval:25".into())
    );
    assert_eq!(PutDurability::Buffered.engine(), caskade::Durability::OsBuffered);
    for bad in [
        "interval",
        "interval:",
        "interval:0",
        "interval:-5",
        "interval:1.5",
        "sometimes",
        "Always",
    ] {
        let e = parse(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::ValueValidation, "{bad}: {e}");
    }
    assert!(
        parse("interval:x")
            .unwrap_err()
            .to_string()
            .contains("milliseconds")
    );
}

#[test]
fn vm_rss_is_read_in_bytes() {
    let status = "Name:\tcaskade\nVmPeak:\t  9000 kB\nVmRSS:\t    1234 kB\nThreads:\t3\n";
    assert_eq!(crate::footprint::parse_vm_rss(status), Some(1234 * 1024));
    assert_eq!(crate::footprint::parse_vm_rss("VmRSS: lots\n"), None);
    assert!(crate::footprint::rss_bytes().unwrap() > 0);
}

/// Where the child writes its outputs; set only for the child.
const CHILD_ENV: &str = "CASKADE_BENCH_TEST_OUT";

/// The options of the whole tiny run: every workload.
#[rustfmt::skip]
const TINY: &[&str] = &[
    "--keys", "20000", "--duration", "0.05", "--durable-ops", "20", "--rounds", "2",
    "--get-tasks", "1,2", "--put-tasks", "1,4", "--durable-tasks", "1,3", "--batch", "500",
];

/// The whole run through the command line, in a child process; checks the
/// table and every figure of the JSON.
#[test]
fn tiny_run_reports_every_workload() {
    let out = tempfile::tempdir().unwrap();
    let child = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "bench_tests::tiny_run_child",
            "--ignored",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, out.path())
        .output()
        .unwrap();
    let log = format!(
        "{}\n{}",
        String::from_utf8_lossy(&child.stdout),
        String::from_utf8_lossy(&child.stderr)
    );
    assert!(child.status.success(), "the child run failed:\n{log}");
    assert!(log.contains("1 passed"), "the child ran no test:\n{log}");
    let table = std::fs::read_to_string(out.path().join("table.txt")).unwrap();
    for row in [
        "L1 raw append",
        "L3 raw pread",
        "L3x2 raw pread",
        "fill, batches of 500",
        "get, random, 1 task(s)",
        "get, random, 2 task(s)",
        "get via spawn_blocking",
        "put, OsBuffered, 1 task(s)",
        "put, OsBuffered, 4 task(s)",
        "mixed: get, 1 reader task(s)",
        "mixed: put, OsBuffered",
        "L2 raw append",
        "put, Always (durable), 1 task(s)",
        "put, Always (durable), 3 task(s)",
        "overwrite x3",
        "reopen 20000 keys",
        "index memory:",
        "B per key",
        "space amplification",
        "after 3 overwrites",
        "after compact()",
        "targets:",
    ] {
        assert!(table.contains(row), "no `{row}` in\n{table}");
    }
    let text = std::fs::read_to_string(out.path().join("report.json")).unwrap();
    let json = Json::parse(&text).unwrap_or_else(|e| panic!("invalid JSON ({e}):\n{text}"));
    check_json(&json);
}

/// Every figure of the tiny run's JSON is there and sane.
fn check_json(j: &Json) {
    let names: Vec<&str> = j["plan"]["workloads"].items().iter().map(Json::str).collect();
    assert_eq!(names, Workload::ALL.map(Workload::name));
    assert_eq!(j["plan"]["durable_tasks"].items().len(), 2);
    assert_eq!(j["plan"]["durability"].str(), "buffered");
    let ids: Vec<&str> = j["phases"].items().iter().map(|p| p["id"].str()).collect();
    #[rustfmt::skip]
    let expected = [
        "L1", "L3", "L3x2", "fill", "get_t1", "get_t2", "get_offloaded_t1", "put_t1", "put_t4",
        "mixed_get_r1", "mixed_put", "L2", "durable_put_t1", "durable_put_t3", "overwrite",
    ];
    assert_eq!(ids, expected);
    for p in j["phases"].items() {
        let id = p["id"].str();
        assert!(
            p["ops"].num() > 0.0 && p["ops_per_sec"].num() > 0.0,
            "{id} did nothing"
        );
        let q = ["p50_ns", "p99_ns", "p999_ns", "max_ns"].map(|k| p[k].num());
        assert!(q[0] > 0.0 && q.windows(2).all(|w| w[0] <= w[1]), "{id}: {q:?}");
        if !id.starts_with('L') {
            assert!(p["ratio_to_limit"].num() > 0.0, "{id} has no ratio");
        }
    }
    let phase = |id: &str| j["phases"].items().iter().find(|p| p["id"].str() == id).unwrap();
    assert_eq!(phase("durable_put_t3")["ops"].num(), 60.0, "3 tasks x 20");
    assert_eq!(
        phase("overwrite")["ops"].num(),
        60_000.0,
        "3 rounds of 20000 keys"
    );
    assert!(j["reopen_ns"].num() > 0.0);
    let m = &j["memory"];
    assert_eq!(m["keys"].num(), 20_000.0);
    assert!(m["rss_after_bytes"].num() > m["rss_before_bytes"].num(), "{m:?}");
    let per_key = m["bytes_per_key"].num();
    assert!(per_key > 0.0 && per_key < 100_000.0, "{per_key} B per key");
    assert!((m["growth_bytes"].num() / 20_000.0 - per_key).abs() < 0.01);
    let s = &j["space"];
    assert_eq!(s["raw_bytes"].num(), 20_000.0 * 116.0);
    assert_eq!(s["records_copied"].num(), 20_000.0);
    assert!(s["compaction_ns"].num() > 0.0);
    let (before, after) = (&s["after_overwrites"], &s["after_compaction"]);
    for f in [before, after] {
        assert_eq!(f["bytes"].num(), f["data_bytes"].num() + f["hint_bytes"].num());
        let vs_live = f["bytes"].num() / f["live_bytes"].num();
        assert!((f["vs_live"].num() - vs_live).abs() < 1e-3, "{f:?}");
        assert!(f["vs_raw"].num() >= 1.0 && f["vs_live"].num() >= 1.0, "{f:?}");
    }
    // Four records per key before, one after; the live bytes stay.
    assert!(before["vs_live"].num() > 3.0, "{before:?}");
    assert!(after["vs_live"].num() <= before["vs_live"].num(), "{after:?}");
    assert!(after["vs_raw"].num() < before["vs_raw"].num(), "{after:?}");
    assert_eq!(after["live_bytes"].num(), before["live_bytes"].num());
    assert!(after["dead_bytes"].num() < before["dead_bytes"].num());
    assert_eq!(j["targets"].items().len(), 5);
    assert!(j["total_ns"].num() > 0.0);
}

/// The child half of [`tiny_run_reports_every_workload`]: parses the
/// options, runs, and writes the table and the JSON where told.
#[test]
#[ignore = "run in a child process by tiny_run_reports_every_workload"]
fn tiny_run_child() {
    let Some(out) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let out = Path::new(&out);
    let data = out.join("data");
    let dir = data.to_str().unwrap();
    let args = bench_args(&[TINY, &["--dir", dir]].concat()).unwrap();
    let plan = args.plan();
    plan.validate().unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(plan.workers)
        .enable_all()
        .build()
        .unwrap();
    let r = bench::run(&plan, &rt, args.dir.as_deref(), &Progress::quiet()).unwrap();
    assert!(r.memory.is_some() && r.space.is_some() && r.reopen.is_some());
    assert!(
        data.join("space").is_dir() && data.join("db").is_dir(),
        "--dir keeps the data"
    );
    std::fs::write(out.join("table.txt"), report::table(&r)).unwrap();
    std::fs::write(out.join("report.json"), report::json(&r)).unwrap();
}
