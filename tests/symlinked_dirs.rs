//! A symbolic link planted where caskade expects one of its directories never
//! redirects I/O; a root that is itself a link (the user's choice) works.

use caskade::{Db, Error};

#[tokio::test]
async fn symlinked_partition_dir_is_refused() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("partitions")).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("partitions/x")).unwrap();
    let db = Db::open(dir.path()).await?;
    let r = db.partition("x").await;
    assert!(matches!(r, Err(Error::Io { op: "create_dir", .. })), "got {r:?}");
    assert_eq!(
        std::fs::read_dir(elsewhere.path()).unwrap().count(),
        0,
        "wrote through the link"
    );
    // Other partitions are unaffected.
    db.partition("y").await?.put("k", "v").await?;
    db.close().await
}

#[tokio::test]
async fn symlinked_partitions_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), dir.path().join("partitions")).unwrap();
    let r = Db::open(dir.path()).await;
    assert!(matches!(r, Err(Error::Io { op: "create_dir", .. })), "got {r:?}");
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
}

#[tokio::test]
async fn symlinked_root_is_the_users_choice() -> caskade::Result<()> {
    let real = tempfile::tempdir().unwrap();
    let links = tempfile::tempdir().unwrap();
    let root = links.path().join("db");
    std::os::unix::fs::symlink(real.path(), &root).unwrap();
    let db = Db::open(&root).await?;
    db.partition("p").await?.put("k", "v").await?;
    db.close().await?;
    assert!(real.path().join("partitions/p/MANIFEST").exists());
    Ok(())
}
