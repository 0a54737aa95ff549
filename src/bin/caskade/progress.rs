//! Progress of a benchmark run on stderr: the timestamped lines of
//! `main.rs`'s `with_runtime` (one per phase), plus an indicatif bar under
//! the current line for the long phases: a bar over keys or operations for
//! the fill, the overwrites and the durable rounds, a bar over time for the
//! timed phases, a spinner for phases of unknown length.
//!
//! Bars draw on stderr through `ProgressDrawTarget::stderr()`, which hides
//! them when stderr is not a terminal (a log file, CI, a pipe), so they
//! never end up in captured output; the lines are printed either way. A bar
//! is cleared when its phase ends, leaving only the lines.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressFinish, ProgressState, ProgressStyle};

/// How often a timed bar or a spinner is redrawn.
const TICK: Duration = Duration::from_millis(100);

/// Where a run reports its progress.
pub struct Progress<'a> {
    line: &'a dyn Fn(&str),
    bars: bool,
}

impl<'a> Progress<'a> {
    /// Lines through `line`, bars on stderr (if it is a terminal).
    pub fn new(line: &'a dyn Fn(&str)) -> Self {
        Progress { line, bars: true }
    }

    /// Neither lines nor bars (tests).
    #[cfg_attr(not(test), allow(dead_code))]
    pub fn quiet() -> Progress<'static> {
        fn ignore(_: &str) {}
        Progress {
            line: &ignore,
            bars: false,
        }
    }

    /// Prints one progress line.
    pub fn line(&self, msg: &str) {
        (self.line)(msg);
    }

    fn bar(&self, len: Option<u64>, template: &str) -> ProgressBar {
        if !self.bars {
            return ProgressBar::hidden();
        }
        let pb = match len {
            Some(len) => ProgressBar::new(len),
            None => ProgressBar::new_spinner(),
        };
        // The templates are constants of this module; fall back to the
        // default style rather than fail a run over a typo.
        let style = ProgressStyle::with_template(template)
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ")
            .with_key("secs", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.1} s", s.elapsed().as_secs_f64());
            })
            .with_key("rate", |s: &ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{}/s", crate::report::fmt_rate(s.per_sec()));
            });
        pb.set_style(style);
        pb.with_finish(ProgressFinish::AndClear)
    }

    /// A bar over `len` `unit`s (keys, operations) with rate and ETA;
    /// whoever does the work advances it through [`Bar::handle`].
    pub fn count(&self, len: u64, unit: &str) -> Bar {
        let template =
            format!("  [{{bar:40}}] {{human_pos}}/{{human_len}} {unit}  {{secs}}, ETA {{eta}}, {{rate}}");
        Bar {
            pb: self.bar(Some(len), &template),
            ticker: None,
        }
    }

    /// A bar that fills over `d`, for a phase that runs that long: a
    /// thread advances it (only while it is drawn).
    pub fn timed(&self, d: Duration) -> Bar {
        let ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX).max(1);
        let pb = self.bar(Some(ms), "  [{bar:40}] {secs} of {msg}");
        pb.set_message(crate::report::fmt_duration(d));
        let ticker = (!pb.is_hidden()).then(|| Ticker::start(pb.clone(), ms));
        Bar { pb, ticker }
    }

    /// A spinner with the time spent so far, for a phase of unknown length.
    pub fn spinner(&self, what: &str) -> Bar {
        let pb = self.bar(None, "  {spinner} {msg} {secs}");
        pb.set_message(what.to_owned());
        if !pb.is_hidden() {
            pb.enable_steady_tick(TICK);
        }
        Bar { pb, ticker: None }
    }
}

/// A progress bar of one phase; cleared when dropped.
pub struct Bar {
    pb: ProgressBar,
    ticker: Option<Ticker>,
}

impl Bar {
    /// The bar itself, to advance (`inc`) from the tasks doing the work;
    /// cheap to clone, and a no-op when hidden.
    pub fn handle(&self) -> &ProgressBar {
        &self.pb
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        if let Some(t) = self.ticker.take() {
            t.stop();
        }
        self.pb.finish_and_clear();
    }
}

/// The thread moving a timed bar to the time elapsed, every [`TICK`].
struct Ticker {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<()>,
}

impl Ticker {
    fn start(pb: ProgressBar, len_ms: u64) -> Ticker {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let started = Instant::now();
        let thread = std::thread::spawn(move || {
            while !flag.load(Relaxed) {
                let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
                pb.set_position(ms.min(len_ms));
                std::thread::park_timeout(TICK);
            }
        });
        Ticker { stop, thread }
    }

    fn stop(self) {
        self.stop.store(true, Relaxed);
        self.thread.thread().unpark();
        // The thread only sets positions: it cannot panic in a way worth reporting.
        let _ = self.thread.join();
    }
}
