//! CPU time of the process's threads by role, from `/proc/self/task`: which
//! thread got the CPU while a window ran (the tokio workers running the
//! readers, the partition's actor doing the writes, the compaction copy).
//!
//! A thread's time is only visible while it lives, so a sampler thread
//! reads every thread's time every [`EVERY`] and keeps the last value seen
//! per thread: a thread that ended (the copy) counts up to its last sample.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// How often the threads are sampled.
const EVERY: Duration = Duration::from_millis(50);
/// Length of a clock tick of `/proc/<pid>/stat` (`USER_HZ` is 100 on Linux).
const TICK: Duration = Duration::from_millis(10);

/// The roles threads are grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Tokio's threads (`tokio-rt-worker`; older tokio: `tokio-runtime-w…`):
    /// the workers running the readers and writer tasks, and the blocking pool.
    Workers = 0,
    /// The partition's actor (`caskade:<partition>`): the writes.
    Actor = 1,
    /// The compaction copy (`caskade:compact…`).
    Copier = 2,
    /// Everything else: the main thread, hint writers, this sampler.
    Other = 3,
}

/// CPU time per [`Role`], indexed by `Role as usize`.
pub type ByRole = [Duration; 4];

/// Last seen CPU ticks per thread id, with the thread's role.
type Seen = HashMap<u32, (Role, u64)>;

/// See the module documentation. Stops its thread on drop.
#[derive(Debug)]
pub struct Sampler {
    actor: String,
    seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sampler {
    /// Starts sampling; `actor` is the actor thread's name (as `comm` shows it).
    pub fn start(actor: &str) -> Sampler {
        // `comm` holds at most 15 bytes of a thread's name.
        let actor: String = actor.chars().take(15).collect();
        let seen = Arc::new(Mutex::new(Seen::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (s, st, name) = (Arc::clone(&seen), Arc::clone(&stop), actor.clone());
        let thread = std::thread::Builder::new()
            .name("bench:cpu".into())
            .spawn(move || {
                while !st.load(Relaxed) {
                    sample(&s, &name);
                    std::thread::sleep(EVERY);
                }
            })
            .ok();
        Sampler {
            actor,
            seen,
            stop,
            thread,
        }
    }

    /// CPU time per role so far (after one more sample).
    pub fn totals(&self) -> ByRole {
        sample(&self.seen, &self.actor);
        let seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let mut out = ByRole::default();
        for (role, ticks) in seen.values() {
            out[*role as usize] += TICK * u32::try_from(*ticks).unwrap_or(u32::MAX);
        }
        out
    }
}

impl Drop for Sampler {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Reads every live thread's role and CPU ticks into `seen`.
fn sample(seen: &Mutex<Seen>, actor: &str) {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return;
    };
    let mut now = Vec::new();
    for entry in dir.flatten() {
        let Some(tid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        let path = entry.path();
        // A thread may end between the listing and these reads.
        let (Ok(comm), Ok(stat)) = (
            std::fs::read_to_string(path.join("comm")),
            std::fs::read_to_string(path.join("stat")),
        ) else {
            continue;
        };
        let comm = comm.trim_end();
        let role = if comm.starts_with("tokio-r") {
            Role::Workers
        } else if comm.starts_with("caskade:compact") && actor != "caskade:compact" {
            Role::Copier
        } else if comm == actor {
            Role::Actor
        } else {
            Role::Other
        };
        now.push((tid, role, ticks(&stat)));
    }
    let mut seen = seen.lock().unwrap_or_else(PoisonError::into_inner);
    for (tid, role, t) in now {
        seen.insert(tid, (role, t));
    }
}

/// utime + stime of a `/proc/.../stat` line, in clock ticks (0 if unreadable).
pub fn ticks(stat: &str) -> u64 {
    // Fields after the name (which may hold spaces and parentheses): the
    // state is field 3, utime 14 and stime 15.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    rest.split_whitespace()
        .skip(11)
        .take(2)
        .filter_map(|x| x.parse::<u64>().ok())
        .sum()
}

/// CPU time (user + system) of the whole process so far; zero where unavailable.
pub fn process() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    TICK * u32::try_from(ticks(&stat)).unwrap_or(u32::MAX)
}
