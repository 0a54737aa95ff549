//! Progress on stderr: an `indicatif` bar over the run's phases, plus a bar
//! of keys written during the long batched phases. When stderr is not a
//! terminal the bars hide and each phase is logged as one plain line.

use std::time::{Duration, Instant};

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

/// The run's progress display.
pub struct Progress {
    multi: MultiProgress,
    phases: ProgressBar,
    start: Instant,
}

impl Progress {
    /// A display for a run of `phases` phases.
    pub fn new(phases: u64) -> Self {
        let multi = MultiProgress::new();
        let phases = multi.add(ProgressBar::new(phases));
        phases.set_style(
            ProgressStyle::with_template("[{elapsed_precise}] {bar:30} phase {pos}/{len}: {msg}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        phases.enable_steady_tick(Duration::from_millis(200));
        Progress {
            multi,
            phases,
            start: Instant::now(),
        }
    }

    /// Starts the next phase, named `what`.
    pub fn phase(&self, what: &str) {
        self.phases.inc(1);
        self.phases.set_message(what.to_owned());
        if self.phases.is_hidden() {
            eprintln!(
                "[{:7.1} s] phase {}/{}: {what}",
                self.start.elapsed().as_secs_f64(),
                self.phases.position(),
                self.phases.length().unwrap_or(0)
            );
        }
    }

    /// A bar of `len` keys for a batched phase (finish it with
    /// [`ProgressBar::finish_and_clear`]).
    pub fn keys(&self, len: u64) -> ProgressBar {
        let bar = self.multi.add(ProgressBar::new(len));
        bar.set_style(
            ProgressStyle::with_template("    {bar:30} {human_pos}/{human_len} keys, {per_sec}, eta {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        bar
    }

    /// Removes the bars.
    pub fn finish(&self) {
        self.phases.finish_and_clear();
    }
}
