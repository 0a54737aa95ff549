//! The built `caskade check` and `caskade inspect` on a real directory:
//! exit codes 0 (clean), 1 (problems), 2 (cannot check: missing, not a
//! database, open by a `Db`, bad arguments), and `--json` that parses and
//! carries the figures.
#![cfg(feature = "cli")]

mod common;

#[allow(dead_code, reason = "the tests use part of the parser")]
#[path = "../src/bin/caskade/test_json.rs"]
mod test_json;

use std::path::{Path, PathBuf};
use std::process::Command;

use test_json::Json;

/// Runs the binary; returns its exit code and stdout.
fn caskade(args: &[&str], dir: &Path) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_caskade"))
        .args(&args[..1])
        .arg(dir)
        .args(&args[1..])
        .output()
        .unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let code = out.status.code().expect("exited, not killed");
    (code, stdout)
}

fn json(args: &[&str], dir: &Path) -> (i32, Json) {
    let (code, out) = caskade(args, dir);
    let parsed = Json::parse(&out).unwrap_or_else(|e| panic!("{e}: {out}"));
    (code, parsed)
}

/// A closed database with partition `p`: 300 keys written, 100
/// overwritten, 30 deleted, over several 4 KiB files, and a dropped
/// partition (id 2). Returns `p`'s directory.
async fn database(root: &Path) -> PathBuf {
    let db = common::open_small_files(root).await.unwrap();
    let p = db.partition("p").await.unwrap();
    for i in 0..300u32 {
        p.put(format!("key-{i:04}"), format!("value {i} ...."))
            .await
            .unwrap();
    }
    for i in 0..100u32 {
        p.put(format!("key-{i:04}"), "again").await.unwrap();
    }
    for i in 200..230u32 {
        p.delete(format!("key-{i:04}")).await.unwrap();
    }
    let dir = common::partition_dir(&db, "p");
    // Id 2 is handed out and dropped: a directory under it is a leftover.
    db.partition("gone").await.unwrap().put("k", "v").await.unwrap();
    db.drop_partition("gone").await.unwrap();
    db.close().await.unwrap();
    dir
}

fn kinds(report: &Json) -> Vec<String> {
    report["problems"]
        .items()
        .iter()
        .map(|p| p["kind"].str().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exit_codes_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("db");
    let part = database(&root).await;

    let (code, out) = caskade(&["check"], &root);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("0 errors, 0 warnings: clean"), "{out}");
    let (code, report) = json(&["check", "--json"], &root);
    assert_eq!(code, 0);
    assert_eq!(kinds(&report), Vec::<String>::new());
    assert_eq!(
        report["records"].num(),
        430.0,
        "300 puts, 100 overwrites, 30 tombstones"
    );

    let (code, inspected) = json(&["inspect", "--json"], &root);
    assert_eq!(code, 0);
    let p = &inspected["partitions"].items()[0];
    assert_eq!(p["name"].str(), "p");
    assert_eq!(p["keys"].num(), 270.0);
    assert_eq!(p["tombstones"].num(), 30.0);
    assert!(p["files"].items().len() >= 3, "several files");
    let files_dead: f64 = p["files"].items().iter().map(|f| f["dead_bytes"].num()).sum();
    assert!(p["dead_bytes"].num() > 0.0 && p["dead_bytes"].num() == files_dead);
    let (code, out) = caskade(&["inspect", "--partition", "p"], &root);
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("partition \"p\"") && out.contains("270 keys"),
        "{out}"
    );
    assert_eq!(caskade(&["inspect", "--partition", "nope"], &root).0, 2);

    // A torn tail is a warning: exit 0, but 1 with --strict.
    let data = |id: u32| part.join(format!("{id:08}.data"));
    let ids: Vec<u32> = common::data_files(&part)
        .iter()
        .map(|n| n.trim_end_matches(".data").parse().unwrap())
        .collect();
    assert!(ids.len() >= 3 && ids[..2] == [1, 2], "{ids:?}");
    let active = data(*ids.last().unwrap());
    let clean_active = std::fs::read(&active).unwrap();
    let mut torn = clean_active.clone();
    torn.extend_from_slice(&clean_active[32..50]);
    std::fs::write(&active, &torn).unwrap();
    let (code, report) = json(&["check", "--json"], &root);
    assert_eq!((code, kinds(&report)), (0, vec!["torn_tail".to_owned()]));
    assert_eq!(caskade(&["check", "--strict"], &root).0, 1);
    std::fs::write(&active, &clean_active).unwrap();

    // A missing hint and a dropped partition's directory are warnings; a
    // directory under an id never handed out is an error.
    let hint = part.join("00000001.hint");
    let kept_hint = std::fs::read(&hint).unwrap();
    std::fs::remove_file(&hint).unwrap();
    let (code, report) = json(&["check", "--json"], &root);
    assert_eq!((code, kinds(&report)), (0, vec!["hint_missing".to_owned()]));
    std::fs::write(&hint, kept_hint).unwrap();
    for (id, kind, exit) in [(2, "dropped_partition", 0), (0xff, "uncatalogued_partition", 1)] {
        let dir = root.join("partitions").join(format!("{id:016x}"));
        std::fs::create_dir(&dir).unwrap();
        let (code, report) = json(&["check", "--json"], &root);
        assert_eq!((code, kinds(&report)), (exit, vec![kind.to_owned()]));
        assert_eq!(report["problems"].items()[0]["path"].str(), dir.to_str().unwrap());
        std::fs::remove_dir(&dir).unwrap();
    }
    assert_eq!(caskade(&["check", "--strict"], &root).0, 0, "all restored");

    // Damage: exit 1, the problem named in the table and the JSON.
    let mut sealed = std::fs::read(data(1)).unwrap();
    sealed[100] ^= 0x01;
    std::fs::write(data(1), &sealed).unwrap();
    let (code, out) = caskade(&["check"], &root);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("data_corrupt") && out.contains("DAMAGED"), "{out}");
    std::fs::remove_file(data(2)).unwrap();
    let (code, report) = json(&["check", "--json"], &root);
    assert_eq!(code, 1);
    assert_eq!(kinds(&report), ["data_corrupt", "missing_file"]);
    assert_eq!(
        report["problems"].items()[1]["path"].str(),
        data(2).to_str().unwrap()
    );
    assert_eq!(report["clean"], Json::Bool(false));
    assert_eq!(json(&["inspect", "--json"], &root).0, 1);

    // Cannot check: open by a Db, missing, not a database, bad arguments.
    let db = caskade::Db::open(tmp.path().join("other")).await.unwrap();
    let (code, out) = caskade(&["check"], &tmp.path().join("other"));
    assert_eq!((code, out.as_str()), (2, ""), "locked");
    assert_eq!(caskade(&["inspect"], &tmp.path().join("other")).0, 2, "locked");
    db.close().await.unwrap();
    assert_eq!(caskade(&["check"], &tmp.path().join("other")).0, 0, "closed");
    assert_eq!(caskade(&["check"], &tmp.path().join("missing")).0, 2);
    std::fs::create_dir(tmp.path().join("empty")).unwrap();
    assert_eq!(caskade(&["check"], &tmp.path().join("empty")).0, 2);
    assert_eq!(caskade(&["check", "--no-such-flag"], &root).0, 2);
}
