//! A symbolic link planted where caskade expects one of its directories never
//! redirects I/O; a root that is itself a link (the user's choice) works.

use caskade::{Db, Error};

#[tokio::test]
async fn symlinked_partition_dir_is_refused() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    // Partition directories are named by catalog id, so the directory the
    // first partition of a fresh database will get must be hard-coded: id 1
    // (checked below with `describe_partition`, so the test cannot pass by
    // planting the link where nothing looks).
    let link = dir.path().join("partitions").join("0000000000000001");
    std::fs::create_dir_all(dir.path().join("partitions")).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), &link).unwrap();
    // Without a catalog, a partition directory means damage, not a new database.
    let r = Db::open(dir.path()).await;
    assert!(matches!(r, Err(Error::Corrupt { .. })), "got {r:?}");
    // Once the catalog exists (its next id still 1), a link planted at a
    // future id is left alone, and that id is never handed out: an entry
    // under an id the catalog did not hand out is not ours to use.
    std::fs::remove_file(&link).unwrap();
    Db::open(dir.path()).await?.close().await?;
    std::os::unix::fs::symlink(elsewhere.path(), &link).unwrap();
    let db = Db::open(dir.path()).await?;
    let x = db.partition("x").await?;
    x.put("k", "v").await?;
    let x_dir = db.describe_partition("x")?.dir.unwrap();
    assert_ne!(x_dir, link, "x must not live behind the link");
    assert!(
        !std::fs::symlink_metadata(&x_dir)
            .unwrap()
            .file_type()
            .is_symlink()
    );
    assert!(
        std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink(),
        "the link is left alone"
    );
    assert_eq!(
        std::fs::read_dir(elsewhere.path()).unwrap().count(),
        0,
        "wrote through the link"
    );
    // Other partitions are unaffected.
    db.partition("y").await?.put("k", "v").await?;
    db.close().await?;
    assert!(
        std::fs::symlink_metadata(&link).unwrap().is_symlink(),
        "the link was not replaced"
    );
    assert_eq!(std::fs::read_dir(elsewhere.path()).unwrap().count(), 0);
    Ok(())
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
    let pdir = db.describe_partition("p")?.dir.expect("a durable partition");
    db.close().await?;
    let in_real = real.path().join(pdir.strip_prefix(&root).unwrap());
    assert!(in_real.join("MANIFEST").exists(), "{in_real:?}");
    Ok(())
}
