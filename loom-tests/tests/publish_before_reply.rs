#![cfg(caskade_loom)]
//! Model 2: publish before reply.
//!
//! Invariant: once a writer's reply has been received, a read through any
//! handle on the partition (each reader loads the snapshot cell itself) sees
//! the write. The writer thread plays the actor: it commits through the real
//! `Writer::commit` and then replies, once through a channel (the oneshot the
//! actor answers on) and once through a flag another reader merely polls.
//! A reader that has not seen the reply may see either version, but only a
//! whole one.

use caskade::__loom::{Version, Writer};
use caskade::SimDisk;
use loom::sync::Arc;
use loom::sync::atomic::{AtomicBool, Ordering};
use loom::sync::mpsc;
use loom::thread;

/// The one key the model writes.
const KEY: &[u8] = b"k";
/// Its value before the modelled write (committed before any thread starts).
const OLD: &[u8] = b"old";
/// Its value after.
const NEW: &[u8] = b"new";

/// Reads `KEY` from `v`, checking the version is whole.
fn read(v: &Version) -> Vec<u8> {
    assert!(v.is_consistent(), "generation {} is inconsistent", v.generation());
    let value = v.get(KEY).unwrap().expect("the key exists in every version");
    let want = if v.generation() >= 3 { NEW } else { OLD };
    assert_eq!(&value[..], want, "generation {}", v.generation());
    value.to_vec()
}

#[test]
fn reply_implies_visible() {
    loom::model(|| {
        let disk = SimDisk::new();
        let mut w = Writer::open(&disk, "/p", 64 << 20).unwrap();
        w.put(KEY, OLD).unwrap(); // Generation 2, acknowledged before the race.
        let waiter_handle = w.cell();
        let poller_handle = w.cell();
        let (reply_tx, reply_rx) = mpsc::channel();
        let replied = Arc::new(AtomicBool::new(false));

        let writer = {
            let replied = Arc::clone(&replied);
            thread::spawn(move || {
                w.put(KEY, NEW).unwrap();
                // The replies: what the actor does after `commit` returns.
                replied.store(true, Ordering::Release);
                reply_tx.send(()).unwrap();
                w
            })
        };
        let poller = thread::spawn(move || {
            // A reader on another handle that does not wait: the flag is read
            // before the load, so a reply it saw was out before the load began.
            let seen_reply = replied.load(Ordering::Acquire);
            let value = read(&poller_handle.load());
            if seen_reply {
                assert_eq!(value, NEW, "reply observed, write not visible");
            }
        });

        // This thread is the caller awaiting the reply.
        reply_rx.recv().unwrap();
        let v = waiter_handle.load();
        assert_eq!(read(&v), NEW, "reply received, write not visible");
        assert_eq!(v.generation(), 3);

        poller.join().unwrap();
        drop(writer.join().unwrap());
    });
}
