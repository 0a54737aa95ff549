//! The only module that names `std::sync` or `loom::sync` for the concurrency
//! core: under `--cfg caskade_loom` the snapshot cell and the writer's core run
//! on loom's model-checked primitives.

#[cfg(caskade_loom)]
pub(crate) use loom::sync::{
    Arc, RwLock,
    atomic::{AtomicBool, Ordering},
};
#[cfg(not(caskade_loom))]
pub(crate) use std::sync::{
    Arc, RwLock,
    atomic::{AtomicBool, Ordering},
};
