//! A database directory is opened by at most one `Db` at a time, in this
//! process or another: a second open gets `Error::Locked` until the first closes.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use caskade::{Db, Error};

/// Set (to a database directory) only in the child process.
const CHILD_ENV: &str = "CASKADE_LOCK_CHILD";
const CHILD_TEST: &str = "lock_child_probe";
const EXIT_LOCKED: i32 = 42;
const EXIT_OPENED: i32 = 43;
const EXIT_OTHER_ERROR: i32 = 44;

/// Not a test of its own: the body of the child process started by
/// [`second_process_is_locked_out_until_close`]. Without the variable it
/// returns at once.
#[tokio::test]
async fn lock_child_probe() {
    let Some(dir) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let code = match Db::open(&dir).await {
        Err(Error::Locked { path }) => {
            println!("CHILD:LOCKED {}", path.display());
            EXIT_LOCKED
        }
        Ok(db) => {
            let value = match db.partition("p").await {
                Ok(p) => p.get("k").await.map(|v| v.map(|v| v.to_vec())),
                Err(e) => Err(e),
            };
            println!("CHILD:OPENED {value:?}");
            if let Err(e) = db.close().await {
                println!("CHILD:CLOSE {e}");
            }
            EXIT_OPENED
        }
        Err(e) => {
            println!("CHILD:ERROR {e}");
            EXIT_OTHER_ERROR
        }
    };
    // Exit here, so the harness cannot turn the outcome into its own exit code.
    std::process::exit(code);
}

/// Re-runs this test binary with only the child test selected; returns its
/// exit code and stdout.
async fn run_child(dir: &Path) -> (Option<i32>, String) {
    let dir = dir.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let out = Command::new(std::env::current_exe().unwrap())
            .env(CHILD_ENV, &dir)
            .args(["--exact", CHILD_TEST, "--nocapture", "--test-threads=1"])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr);
        (out.status.code(), format!("{stdout}\n[stderr]\n{stderr}"))
    })
    .await
    .unwrap()
}

fn assert_locked(r: caskade::Result<Db>, root: &Path) {
    match r {
        Err(Error::Locked { path }) => assert_eq!(path, root.join("LOCK")),
        other => panic!("expected Locked, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn second_open_in_process_is_locked_until_close() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).await?;
    assert_locked(Db::open(dir.path()).await, dir.path());

    let p = db.partition("p").await?;
    p.put("k", "v").await?;
    assert_locked(
        Db::builder(dir.path()).max_file_size(4096).open().await,
        dir.path(),
    );
    // The failed attempts did not disturb the holder.
    p.put("k2", "v2").await?;
    assert_eq!(p.get("k").await?.as_deref(), Some(&b"v"[..]));

    db.close().await?;
    let db = Db::open(dir.path()).await?;
    assert_locked(Db::open(dir.path()).await, dir.path());
    let p = db.partition("p").await?;
    assert_eq!(p.get("k2").await?.as_deref(), Some(&b"v2"[..]));
    db.close().await?;
    Db::open(dir.path()).await?.close().await
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_every_handle_releases_the_lock() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).await?;
    let p = db.partition("p").await?;
    p.put("k", "v").await?;
    drop((p, db));
    // The partitions close in the background; poll with a deadline.
    let deadline = Instant::now() + Duration::from_secs(5);
    let db = loop {
        match Db::open(dir.path()).await {
            Ok(db) => break db,
            Err(Error::Locked { .. }) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            Err(e) => panic!("lock not released within 5 s: {e}"),
        }
    };
    assert_eq!(
        db.partition("p").await?.get("k").await?.as_deref(),
        Some(&b"v"[..])
    );
    db.close().await
}

#[tokio::test(flavor = "multi_thread")]
async fn second_process_is_locked_out_until_close() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).await?;
    db.partition("p").await?.put("k", "from parent").await?;

    let (code, out) = run_child(dir.path()).await;
    assert_eq!(
        code,
        Some(EXIT_LOCKED),
        "child while the parent holds the db:\n{out}"
    );
    let marker = format!("CHILD:LOCKED {}", dir.path().join("LOCK").display());
    assert!(out.contains(&marker), "child output:\n{out}");

    db.close().await?;
    let (code, out) = run_child(dir.path()).await;
    assert_eq!(code, Some(EXIT_OPENED), "child after the parent closed:\n{out}");
    let want = format!("CHILD:OPENED Ok(Some({:?}))", b"from parent".to_vec());
    assert!(out.contains(&want), "child output:\n{out}");

    // The child released the lock when it exited.
    Db::open(dir.path()).await?.close().await
}
