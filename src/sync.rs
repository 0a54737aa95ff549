//! The only module that names `std::sync` or `loom::sync` for the concurrency
//! core: under `--cfg caskade_loom` the snapshot cell, the writer's core and
//! the partition gate run on loom's model-checked primitives.

#[cfg(caskade_loom)]
pub(crate) use loom::sync::{
    Arc, Mutex, MutexGuard, RwLock,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};
#[cfg(not(caskade_loom))]
pub(crate) use std::sync::{
    Arc, Mutex, MutexGuard, RwLock,
    atomic::{AtomicBool, AtomicUsize, Ordering},
};
