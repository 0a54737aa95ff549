//! One life of a `caskade stress` child: spawn it, kill it with `SIGKILL`
//! at the planned moment, and collect every line it wrote before it died.

use std::fs::File;
use std::io::{BufRead as _, BufReader};
use std::os::unix::process::ExitStatusExt as _;
use std::path::Path;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::protocol::{self, Line};

/// How long a child may take to reach the planned moment before the cycle
/// fails as hung.
const HANG: Duration = Duration::from_secs(60);

/// When to kill the child.
#[derive(Debug, Clone, Copy)]
pub enum KillPlan {
    /// This long after it printed `open`: usually before `ready`, that is
    /// while it recovers the directory the previous child left.
    DuringRecovery(Duration),
    /// This long after it printed `ready`: under load.
    UnderLoad(Duration),
}

/// What a child wrote and how it ended.
#[derive(Debug)]
pub struct Transcript {
    /// Every line, in order.
    pub lines: Vec<Line>,
    /// Whether it printed `open` and `ready` before it died.
    pub opened: bool,
    /// See `opened`.
    pub ready: bool,
    /// From receiving `open` to receiving `ready`, if both came.
    pub recovery: Option<Duration>,
    /// How it ended.
    pub status: ExitStatus,
    /// Its stderr.
    pub stderr: String,
}

impl Transcript {
    /// Whether it died of our `SIGKILL` (and not on its own).
    pub fn killed(&self) -> bool {
        self.status.signal() == Some(libc::SIGKILL)
    }
}

/// Runs one child on `dir` and kills it as `plan` says. `stderr` is a file
/// for the child's stderr.
///
/// # Errors
/// The child could not be spawned, hung, or wrote a line that does not parse.
pub fn run(
    exe: &Path,
    dir: &Path,
    seed: u64,
    durability: &str,
    plan: KillPlan,
    stderr: &Path,
) -> Result<Transcript, String> {
    let err_file = File::create(stderr).map_err(|e| format!("create {stderr:?}: {e}"))?;
    let mut child = Command::new(exe)
        .arg("stress")
        .arg("--dir")
        .arg(dir)
        .args(["--seed", &seed.to_string(), "--durability", durability])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(err_file)
        .spawn()
        .map_err(|e| format!("spawn {exe:?}: {e}"))?;
    let stdout = child.stdout.take().ok_or("no stdout pipe")?;
    let (tx, rx) = mpsc::channel::<(Vec<u8>, Instant)>();
    let reader = std::thread::spawn(move || {
        let mut r = BufReader::new(stdout);
        loop {
            let mut line = Vec::new();
            match r.read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send((line, Instant::now())).is_err() {
                        break;
                    }
                }
            }
        }
    });

    let mut raw: Vec<(Vec<u8>, Instant)> = Vec::new();
    // Receives lines until one starts with `word`; `None` if the child
    // closed stdout (died) first. Fails after `HANG`.
    let wait_for = |word: &[u8], raw: &mut Vec<(Vec<u8>, Instant)>| -> Result<Option<Instant>, String> {
        let deadline = Instant::now() + HANG;
        loop {
            match rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok((line, at)) => {
                    let hit = line
                        .strip_suffix(b"\n")
                        .is_some_and(|l| l.split(|&b| b == b' ').next() == Some(word));
                    raw.push((line, at));
                    if hit {
                        return Ok(Some(at));
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return Ok(None),
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    return Err(format!("child hung waiting for {word:?}"));
                }
            }
        }
    };
    let waited = match plan {
        KillPlan::DuringRecovery(delay) => wait_for(b"open", &mut raw).map(|at| (at, delay)),
        KillPlan::UnderLoad(delay) => wait_for(b"ready", &mut raw).map(|at| (at, delay)),
    };
    if let Ok((Some(at), delay)) = waited {
        std::thread::sleep((at + delay).saturating_duration_since(Instant::now()));
    }
    // On Unix `kill` is SIGKILL. It succeeds on a child that already
    // exited but was not yet reaped; `status` then tells.
    let killed = child.kill();
    let status = child.wait().map_err(|e| format!("wait: {e}"))?;
    killed.map_err(|e| format!("kill: {e}"))?;
    // Every line the child wrote before it died is still in the pipe.
    reader.join().map_err(|_| "reader thread panicked")?;
    raw.extend(rx.try_iter());
    waited?;

    let stderr = std::fs::read_to_string(stderr).unwrap_or_default();
    let mut lines = Vec::with_capacity(raw.len());
    let (mut open_at, mut ready_at) = (None, None);
    for (bytes, at) in raw {
        let text = bytes
            .strip_suffix(b"\n")
            .ok_or_else(|| format!("unterminated last line {bytes:?} (lines are written whole)"))?;
        let text = std::str::from_utf8(text).map_err(|e| format!("line {bytes:?}: {e}"))?;
        let line = protocol::parse(text).map_err(|e| e.to_string())?;
        match line {
            Line::Open => open_at = Some(at),
            Line::Ready { .. } => ready_at = Some(at),
            _ => {}
        }
        lines.push(line);
    }
    Ok(Transcript {
        lines,
        opened: open_at.is_some(),
        ready: ready_at.is_some(),
        recovery: open_at.zip(ready_at).map(|(o, r)| r.saturating_duration_since(o)),
        status,
        stderr,
    })
}
