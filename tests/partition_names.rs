//! Partition names never become paths: hostile names are distinct, isolated
//! partitions living in `<root>/partitions/<16 hex digits>`, nothing is
//! created outside the root, invalid names create nothing, symbolic links
//! planted under partition ids are never followed, and leftovers of dropped
//! partitions are cleaned up while unknown entries stay.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use caskade::{Db, Error, PartitionOptions, SimDisk};
use proptest::prelude::*;

/// Every path under `dir` (relative to it), without following links.
fn tree(dir: &Path) -> BTreeSet<PathBuf> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            out.insert(path.strip_prefix(dir).unwrap().to_path_buf());
            if std::fs::symlink_metadata(&path).unwrap().is_dir() {
                stack.push(path);
            }
        }
    }
    out
}

/// The entries directly in `dir`.
fn entries(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect()
}

fn is_hex_dir_name(n: &str) -> bool {
    n.len() == 16
        && n.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The root holds only `LOCK`, `CATALOG` and `partitions/`, and `partitions/`
/// exactly `dirs` real directories named by 16 lowercase hex digits.
fn assert_root_layout(root: &Path, dirs: usize) {
    let want: BTreeSet<String> = ["CATALOG", "LOCK", "partitions"].map(String::from).into();
    assert_eq!(entries(root), want, "root of {}", root.display());
    let parts = entries(&root.join("partitions"));
    assert_eq!(parts.len(), dirs, "partition dirs: {parts:?}");
    for n in &parts {
        assert!(is_hex_dir_name(n), "unexpected entry partitions/{n:?}");
        let meta = std::fs::symlink_metadata(root.join("partitions").join(n)).unwrap();
        assert!(meta.is_dir(), "partitions/{n} is not a real directory");
    }
}

/// Independent of the engine: 1..=255 bytes, no C0, DEL or C1 control character.
fn is_valid_name(n: &str) -> bool {
    !n.is_empty() && n.len() <= 255 && !n.chars().any(|c| c < ' ' || ('\u{7f}'..='\u{9f}').contains(&c))
}

fn hostile_names(root: &Path, outside: &Path) -> Vec<String> {
    let mut names: Vec<String> = [
        "../x",
        "/etc",
        "a/b",
        ".",
        "..",
        "./",
        "~",
        "CON",
        "nul",
        "NUL",
        "con.txt",
        "Users",
        "users",
        "caf\u{e9}",
        "cafe\u{301}",
        "with space",
        " ",
        "trailing.",
        "\u{1f980} crab",
        "a\\b",
        "..\\..\\x",
        "%2e%2e",
        "%2e%2e%2f",
        "partitions",
        "CATALOG",
        "LOCK",
        "0000000000000001",
        "*?<>|:\"",
    ]
    .map(String::from)
    .into();
    names.push("x".repeat(255));
    names.push(format!("{}x", "\u{e9}".repeat(127)));
    names.push("../".repeat(85));
    // Absolute and relative routes to a directory outside the root.
    names.push(format!("{}/abs", outside.display()));
    let up = root.join("partitions").components().count();
    let rel = outside.strip_prefix("/").unwrap().display();
    names.push(format!("{}{rel}/rel", "../".repeat(up)));
    names.push(format!("{}{rel}/rel2", "../".repeat(up - 1)));
    for n in &names {
        assert!(is_valid_name(n), "test name {n:?} should be valid");
    }
    names
}

#[tokio::test]
async fn hostile_names_are_distinct_isolated_partitions() -> caskade::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("sentinel"), "s").unwrap();
    std::fs::write(outside.path().join("keep"), "k").unwrap();
    let root = tmp.path().join("db");
    let names = hostile_names(&root, outside.path());
    let outside_before = tree(outside.path());
    let db = Db::open(&root).await?;
    for (i, name) in names.iter().enumerate() {
        let p = match i % 2 {
            0 => db.create_partition(name, PartitionOptions::default()).await?,
            _ => db.partition(name).await?,
        };
        assert_eq!(p.name(), name);
        p.put("who", name).await?;
        p.put(format!("only-{i}"), "x").await?;
    }
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(db.list_partitions(), sorted);
    check_isolated(&db, &root, &names).await?;
    db.close().await?;
    let db = Db::open(&root).await?;
    assert_eq!(db.list_partitions(), sorted, "after reopen");
    check_isolated(&db, &root, &names).await?;
    db.close().await?;
    let top: BTreeSet<String> = ["db", "sentinel"].map(String::from).into();
    assert_eq!(entries(tmp.path()), top, "something was created next to the root");
    assert_root_layout(&root, names.len());
    assert_eq!(
        tree(outside.path()),
        outside_before,
        "something was created outside the root"
    );
    assert_eq!(std::fs::read(outside.path().join("keep")).unwrap(), b"k");
    Ok(())
}

/// Each partition holds its own name and only its own mark, in its own
/// hex directory under `partitions/`.
async fn check_isolated(db: &Db, root: &Path, names: &[String]) -> caskade::Result<()> {
    let marks: Vec<String> = (0..names.len()).map(|j| format!("only-{j}")).collect();
    let mut dirs = BTreeSet::new();
    for (i, name) in names.iter().enumerate() {
        let p = db.partition(name).await?;
        assert_eq!(
            db.list_partitions().len(),
            names.len(),
            "partition() of {name:?} created one"
        );
        assert_eq!(p.get("who").await?.as_deref(), Some(name.as_bytes()), "{name:?}");
        assert_eq!(
            p.exists_many(&marks).await?,
            1,
            "{name:?} sees other partitions' keys"
        );
        assert!(p.contains_key(&marks[i]).await?);
        let dir = db
            .describe_partition(name)?
            .dir
            .expect("durable partition has a dir");
        assert_eq!(dir.parent(), Some(root.join("partitions").as_path()), "{name:?}");
        assert!(is_hex_dir_name(dir.file_name().unwrap().to_str().unwrap()));
        assert!(dir.is_dir());
        dirs.insert(dir);
    }
    assert_eq!(dirs.len(), names.len(), "two names share a directory");
    Ok(())
}

#[tokio::test]
async fn invalid_names_are_rejected_and_create_nothing() -> caskade::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("db");
    let db = Db::open(&root).await?;
    db.put("ok", "k", "v").await?;
    let files_before = tree(tmp.path());
    let catalog_before = std::fs::read(root.join("CATALOG")).unwrap();
    let invalid = [
        String::new(),
        "a\0b".into(),
        "a\nb".into(),
        "tab\there".into(),
        "\u{1b}[31m".into(),
        "\u{7f}".into(),
        "c1\u{85}".into(),
        "x".repeat(256),
        "\u{e9}".repeat(128),
    ];
    for bad in &invalid {
        let is_invalid = |r: &caskade::Result<_>| matches!(r, Err(Error::InvalidPartitionName { .. }));
        let r = db
            .create_partition(bad, PartitionOptions::default())
            .await
            .map(drop);
        assert!(is_invalid(&r), "create_partition({bad:?}): {r:?}");
        let r = db.partition(bad).await.map(drop);
        assert!(is_invalid(&r), "partition({bad:?}): {r:?}");
        let r = db.put(bad, "k", "v").await;
        assert!(is_invalid(&r), "put({bad:?}): {r:?}");
        assert_eq!(db.get(bad, "k").await?, None);
        assert!(!db.delete(bad, "k").await?);
        let r = db.describe_partition(bad).map(drop);
        assert!(
            matches!(r, Err(Error::PartitionNotFound { .. })),
            "describe({bad:?}): {r:?}"
        );
        let r = db.drop_partition(bad).await;
        assert!(
            matches!(r, Err(Error::PartitionNotFound { .. })),
            "drop({bad:?}): {r:?}"
        );
    }
    assert_eq!(db.list_partitions(), ["ok"]);
    assert_eq!(tree(tmp.path()), files_before, "an invalid name created a file");
    assert_eq!(
        std::fs::read(root.join("CATALOG")).unwrap(),
        catalog_before,
        "catalog changed"
    );
    db.close().await?;
    let db = Db::open(&root).await?;
    assert_eq!(db.list_partitions(), ["ok"]);
    db.close().await?;
    assert_root_layout(&root, 1);
    Ok(())
}

fn name_strategy() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-zA-Z0-9./\\\\%~: _-]{1,12}",
        "(\\.\\./|/|\\\\|%2e|\\.|\u{e9}){40,100}",
        // Around the 255-byte limit, in 1- and 2-byte characters.
        "[a-z/.\\\\]{250,260}",
        "\u{e9}{125,130}",
        "[\\x00-\\x1f\\x7f\\x{80}-\\x{9f}a-z/.]{0,6}",
        "\\PC{1,70}",
        any::<String>(),
    ]
}

/// One case, on a simulated disk (fast): creates every valid name, checks
/// the invalid ones are refused, then after a power loss checks names,
/// values and that every file is `partitions/<16 hex digits>/...` or the
/// catalog or lock in the root.
async fn names_round_trip(names: &[String]) -> caskade::Result<()> {
    let disk = SimDisk::new();
    let open = || Db::builder("/db").simulated_disk(disk.clone()).open();
    let db = open().await?;
    let mut valid = BTreeSet::new();
    for n in names {
        if is_valid_name(n) {
            db.partition(n).await?.put("name", n).await?;
            valid.insert(n.clone());
        } else {
            let r = db.partition(n).await.map(drop);
            assert!(
                matches!(r, Err(Error::InvalidPartitionName { .. })),
                "{n:?}: {r:?}"
            );
        }
    }
    disk.power_loss(true);
    drop(db);
    let db = open().await?;
    let want: Vec<String> = valid.iter().cloned().collect();
    assert_eq!(db.list_partitions(), want);
    for n in &valid {
        assert_eq!(db.get(n, "name").await?.as_deref(), Some(n.as_bytes()), "{n:?}");
    }
    db.close().await?;
    let mut dirs = BTreeSet::new();
    for f in disk.list_files() {
        let rel = f
            .strip_prefix("/db")
            .unwrap_or_else(|_| panic!("{f:?} is outside the root"));
        let parts: Vec<&str> = rel.iter().map(|c| c.to_str().unwrap()).collect();
        match parts[..] {
            ["CATALOG"] | ["LOCK"] => {}
            ["partitions", dir, _file] if is_hex_dir_name(dir) => drop(dirs.insert(dir.to_owned())),
            _ => panic!("unexpected file {f:?}"),
        }
    }
    assert_eq!(dirs.len(), valid.len(), "{dirs:?}");
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn generated_names_round_trip(names in prop::collection::vec(name_strategy(), 1..6)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        rt.block_on(names_round_trip(&names)).unwrap();
    }
}

/// The directory name the partition created after `name` will get.
fn next_dir(db: &Db, name: &str) -> PathBuf {
    let dir = db.describe_partition(name).unwrap().dir.unwrap();
    let id = u64::from_str_radix(dir.file_name().unwrap().to_str().unwrap(), 16).unwrap();
    dir.with_file_name(format!("{:016x}", id + 1))
}

#[tokio::test]
async fn symlink_at_a_future_id_is_never_followed() -> caskade::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("keep"), "k").unwrap();
    let before = tree(outside.path());
    let root = tmp.path().join("db");
    let db = Db::open(&root).await?;
    db.put("a", "k", "v").await?;
    let link = next_dir(&db, "a");
    std::os::unix::fs::symlink(outside.path(), &link).unwrap();
    // Either a typed error, or the link was replaced by a real directory.
    let mut outcomes = Vec::new();
    match db.partition("b").await {
        Err(e) => outcomes.push(format!("{e:?}")),
        Ok(p) => {
            p.put("k", "v").await?;
            let meta = std::fs::symlink_metadata(&link).unwrap();
            assert!(
                !meta.file_type().is_symlink() && meta.is_dir(),
                "link kept but used"
            );
        }
    }
    outcomes.push(format!("{:?}", db.put("b", "k2", "v2").await));
    assert_eq!(
        tree(outside.path()),
        before,
        "wrote through the link: {outcomes:?}"
    );
    db.close().await?;
    // Reopening with the link in place (now at a live id) follows it neither.
    let db = Db::open(&root).await?;
    assert_eq!(db.get("a", "k").await?.as_deref(), Some(&b"v"[..]));
    outcomes.push(format!("{:?}", db.put("b", "k2", "v2").await));
    db.close().await?;
    assert_eq!(
        tree(outside.path()),
        before,
        "reopen followed the link: {outcomes:?}"
    );
    // Once the link is gone the partition works.
    if std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink() {
        std::fs::remove_file(&link).unwrap();
    }
    let db = Db::open(&root).await?;
    db.put("b", "k3", "v3").await?;
    assert_eq!(db.get("b", "k3").await?.as_deref(), Some(&b"v3"[..]));
    assert_eq!(db.describe_partition("b")?.dir.as_ref(), Some(&link));
    db.close().await?;
    assert_eq!(tree(outside.path()), before);
    assert_root_layout(&root, 2);
    Ok(())
}

#[tokio::test]
async fn leftovers_of_dropped_partitions_are_removed_unknown_entries_stay() -> caskade::Result<()> {
    let tmp = tempfile::tempdir().unwrap();
    let outside = tempfile::tempdir().unwrap();
    std::fs::write(outside.path().join("keep"), "k").unwrap();
    let before = tree(outside.path());
    let root = tmp.path().join("db");
    let db = Db::open(&root).await?;
    for name in ["keep", "gone", "linked"] {
        db.put(name, "k", name).await?;
    }
    let keep = db.describe_partition("keep")?.dir.unwrap();
    let gone = db.describe_partition("gone")?.dir.unwrap();
    let linked = db.describe_partition("linked")?.dir.unwrap();
    db.drop_partition("gone").await?;
    db.drop_partition("linked").await?;
    assert!(!gone.exists() && !linked.exists(), "drop left its directory");
    db.close().await?;
    // A dropped partition's directory comes back (a crash mid-removal), a link
    // stands at another dropped id, and unknown entries are planted.
    std::fs::create_dir(&gone).unwrap();
    std::fs::write(gone.join("00000001.data"), "junk").unwrap();
    std::os::unix::fs::symlink(outside.path(), &linked).unwrap();
    let parts = root.join("partitions");
    std::fs::write(parts.join("README"), "mine").unwrap();
    std::fs::create_dir(parts.join("notes")).unwrap();
    std::fs::write(parts.join("notes/n"), "n").unwrap();
    let db = Db::open(&root).await?;
    assert!(
        std::fs::symlink_metadata(&gone).is_err(),
        "dropped dir not removed at open"
    );
    assert!(
        std::fs::symlink_metadata(&linked).is_err(),
        "link at a dropped id not removed"
    );
    assert_eq!(tree(outside.path()), before, "removal followed the link");
    assert_eq!(std::fs::read(parts.join("README")).unwrap(), b"mine");
    assert_eq!(std::fs::read(parts.join("notes/n")).unwrap(), b"n");
    assert_eq!(db.list_partitions(), ["keep"]);
    assert_eq!(db.get("keep", "k").await?.as_deref(), Some(&b"keep"[..]));
    // The name is free again, for a new, empty partition in a new directory.
    let again = db.partition("gone").await?;
    assert_eq!(again.get("k").await?, None);
    let dir = db.describe_partition("gone")?.dir.unwrap();
    assert!(
        dir != gone && dir != linked,
        "an id was reused: {}",
        dir.display()
    );
    db.close().await?;
    let mut want: BTreeSet<String> = ["README", "notes"].map(String::from).into();
    want.extend([keep, dir].map(|d| d.file_name().unwrap().to_str().unwrap().to_owned()));
    assert_eq!(entries(&parts), want);
    Ok(())
}
