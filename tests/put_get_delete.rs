//! put → get → delete → get, missing keys, overwrites, empty values.

use caskade::{Db, Error};

#[tokio::test]
async fn put_get_delete_get() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).await?;
    let p = db.partition("users").await?;
    assert_eq!(p.get("missing").await?, None);
    p.put("k", "v1").await?;
    assert_eq!(p.get("k").await?.as_deref(), Some(&b"v1"[..]));
    p.put("k", "v2").await?;
    assert_eq!(p.get("k").await?.as_deref(), Some(&b"v2"[..]));
    assert!(p.contains_key("k").await?);
    assert!(p.delete("k").await?);
    assert!(!p.delete("k").await?);
    assert_eq!(p.get("k").await?, None);
    assert!(!p.contains_key("k").await?);
    db.close().await
}

#[tokio::test]
async fn empty_value_is_not_a_delete_and_survives_reopen() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).await?;
    let p = db.partition("p").await?;
    p.put("empty", "").await?;
    p.put("gone", "x").await?;
    p.delete("gone").await?;
    assert_eq!(p.get("empty").await?.as_deref(), Some(&b""[..]));
    db.close().await?;

    let db = Db::open(dir.path()).await?;
    let p = db.partition("p").await?;
    assert_eq!(p.get("empty").await?.as_deref(), Some(&b""[..]));
    assert!(p.contains_key("empty").await?);
    assert_eq!(p.get("gone").await?, None);
    db.close().await
}

#[tokio::test]
async fn handles_after_close_report_closed() -> caskade::Result<()> {
    let dir = tempfile::tempdir().unwrap();
    let db = Db::open(dir.path()).await?;
    let p = db.partition("p").await?;
    p.put("a", "1").await?;
    let db2 = db.clone();
    db.close().await?;
    assert!(matches!(p.put("b", "2").await, Err(Error::Closed)));
    assert!(matches!(p.get("a").await, Err(Error::Closed)));
    assert!(matches!(db2.partition("p").await, Err(Error::Closed)));
    // The lock is released: the directory can be opened again.
    let db = Db::open(dir.path()).await?;
    assert_eq!(
        db.partition("p").await?.get("a").await?.as_deref(),
        Some(&b"1"[..])
    );
    db.close().await
}
