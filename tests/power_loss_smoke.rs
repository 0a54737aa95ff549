//! Acknowledged writes under the default durability survive simulated power loss.

use caskade::{Db, SimDisk};

#[tokio::test]
async fn acknowledged_writes_survive_power_loss() -> caskade::Result<()> {
    let disk = SimDisk::with_seed(7);
    let db = Db::builder("/db")
        .simulated_disk(disk.clone())
        .max_file_size(4096)
        .open()
        .await?;
    let p = db.partition("p").await?;
    for i in 0..200u32 {
        p.put(i.to_be_bytes(), format!("value-{i}")).await?;
    }
    p.delete(5u32.to_be_bytes()).await?;
    disk.power_loss(true);
    drop((p, db));

    let db = Db::builder("/db")
        .simulated_disk(disk.clone())
        .max_file_size(4096)
        .open()
        .await?;
    let p = db.partition("p").await?;
    for i in 0..200u32 {
        let want = (i != 5).then(|| format!("value-{i}").into_bytes());
        assert_eq!(p.get(i.to_be_bytes()).await?.map(|b| b.to_vec()), want, "key {i}");
    }
    let files = disk.list_files();
    let count = |ext: &str| {
        files
            .iter()
            .filter(|f| f.to_string_lossy().ends_with(ext))
            .count()
    };
    assert!(count(".data") >= 2, "the workload must rotate: {files:?}");
    assert!(count(".hint") >= 1, "sealed files get hints: {files:?}");
    db.close().await
}
