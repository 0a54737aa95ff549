//! One adapter per engine, each using its engine as the engine's own
//! documentation recommends (see each module). They share one shape:
//! `open(dir, mode, cfg)`, `get` (value length), `put`, `write_batch`,
//! `sync`, `close`, all `async` so one workload code drives them all; only
//! caskade's ever wait.

pub mod caskade;
pub mod fjall;
pub mod redb;
pub mod sled;

/// The name of the partition, tree, table or keyspace every engine uses.
pub const NAME: &str = "bench";

#[cfg(test)]
mod tests {
    use crate::engine::{EngineConfig, EngineKind, Mode, Runner, Store};
    use crate::plan::{Records, fill_key};

    const ALL: [EngineKind; 4] = [
        EngineKind::Caskade,
        EngineKind::Sled,
        EngineKind::Redb,
        EngineKind::Fjall,
    ];

    fn key(i: u64) -> Vec<u8> {
        let mut k = vec![0u8; 16];
        fill_key(i, &mut k);
        k
    }

    /// put, get, batch, sync, close, reopen, get: on a tiny data set, in
    /// both modes, for every engine.
    #[test]
    fn every_adapter_round_trips() {
        let runner = Runner::new(2).unwrap();
        let cfg = EngineConfig {
            cache_bytes: 8 << 20,
            caskade_scheduler: false,
        };
        for kind in ALL {
            for mode in [Mode::Buffered, Mode::Durable] {
                let dir = tempfile::tempdir().unwrap();
                let store = runner
                    .block_on(Store::open(kind, dir.path(), mode, cfg))
                    .unwrap_or_else(|e| panic!("{e:#}"));
                assert_eq!(store.kind(), kind);
                runner.block_on(async {
                    assert_eq!(store.get(&key(1)).await.unwrap(), None, "{kind:?}");
                    store.put(&key(1), b"one").await.unwrap();
                    assert_eq!(store.get(&key(1)).await.unwrap(), Some(3), "{kind:?}");
                    let mut batch = Records::new(16, 5, 10);
                    for i in 10..20 {
                        batch.push(i, i);
                    }
                    assert_eq!(batch.iter().count(), 10);
                    store.write_batch(&batch).await.unwrap();
                    store.put(&key(1), b"uno!").await.unwrap();
                    store.sync().await.unwrap();
                });
                runner.block_on(store.close()).unwrap();
                let store = runner
                    .block_on(Store::open(kind, dir.path(), mode, cfg))
                    .unwrap_or_else(|e| panic!("{e:#}"));
                runner.block_on(async {
                    assert_eq!(
                        store.get(&key(1)).await.unwrap(),
                        Some(4),
                        "{kind:?} after reopen"
                    );
                    for i in 10..20 {
                        assert_eq!(store.get(&key(i)).await.unwrap(), Some(5), "{kind:?} key {i}");
                    }
                    assert_eq!(store.get(&key(99)).await.unwrap(), None);
                });
                runner.block_on(store.close()).unwrap();
            }
        }
    }

    /// The runner runs N tasks for every engine and gathers their results.
    #[test]
    fn runner_runs_every_task() {
        let runner = Runner::new(2).unwrap();
        let cfg = EngineConfig {
            cache_bytes: 8 << 20,
            caskade_scheduler: false,
        };
        for kind in ALL {
            let dir = tempfile::tempdir().unwrap();
            let store = runner
                .block_on(Store::open(kind, dir.path(), Mode::Buffered, cfg))
                .unwrap();
            let out = runner
                .run(&store, 8, |store, t| async move {
                    store.put(&key(t as u64), b"v").await?;
                    Ok(crate::engine::TaskOut {
                        latency: crate::stats::Recorder::new(),
                        end: std::time::Instant::now(),
                        writer: t % 2 == 0,
                    })
                })
                .unwrap();
            assert_eq!(out.len(), 8);
            assert_eq!(out.iter().filter(|o| o.writer).count(), 4);
            for t in 0..8 {
                assert_eq!(runner.block_on(store.get(&key(t))).unwrap(), Some(1), "{kind:?}");
            }
            runner.block_on(store.close()).unwrap();
        }
    }
}
