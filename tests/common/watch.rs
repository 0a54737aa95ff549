//! What a sweep watches besides values: the largest single allocation the
//! process made (through `tracking-allocator`, a safe wrapper of the system
//! allocator: the crate forbids `unsafe` in tests too) and every panic on
//! any thread (a panic hook counts them; the engine's actor threads included).
//!
//! A test binary that uses this module installs the allocator for itself
//! (`#[global_allocator]` below), so only include it from sweep binaries.
#![allow(dead_code)]

use std::sync::Once;
use std::sync::atomic::{AtomicUsize, Ordering};

use tracking_allocator::{AllocationGroupId, AllocationRegistry, AllocationTracker, Allocator};

#[global_allocator]
static ALLOCATOR: Allocator<std::alloc::System> = Allocator::system();

static MAX_ALLOC: AtomicUsize = AtomicUsize::new(0);
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Keeps the largest allocation size; allocates nothing itself.
struct MaxSize;

impl AllocationTracker for MaxSize {
    fn allocated(&self, _addr: usize, object_size: usize, _wrapped: usize, _group: AllocationGroupId) {
        MAX_ALLOC.fetch_max(object_size, Ordering::Relaxed);
    }

    fn deallocated(
        &self,
        _addr: usize,
        _object_size: usize,
        _wrapped: usize,
        _source: AllocationGroupId,
        _current: AllocationGroupId,
    ) {
    }
}

/// Starts watching (idempotent): from now on allocations are measured and
/// panics counted (and still reported by the previous hook).
pub fn start() {
    static START: Once = Once::new();
    START.call_once(|| {
        // Only this function sets a tracker, once.
        AllocationRegistry::set_global_tracker(MaxSize).expect("no tracker set before");
        AllocationRegistry::enable_tracking();
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            PANICS.fetch_add(1, Ordering::SeqCst);
            previous(info);
        }));
    });
}

/// Panics seen so far, on any thread.
pub fn panics() -> usize {
    PANICS.load(Ordering::SeqCst)
}

/// The largest single allocation so far, in bytes.
pub fn max_alloc() -> usize {
    MAX_ALLOC.load(Ordering::Relaxed)
}

/// No single allocation may reach this (the databases swept are a few KiB;
/// a corrupt length driving an allocation would show up far above it).
pub const ALLOC_LIMIT: usize = 64 << 20;
