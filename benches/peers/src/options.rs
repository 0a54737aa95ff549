//! The command line ([`Cli`], clap derive) and its validation into a
//! [`Plan`]: every bad value is a message naming the option, never a panic.

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use crate::engine::EngineKind;
use crate::plan::{Plan, bytes_needed};

/// Longest key every engine accepts (fjall/lsm-tree: 65,535 bytes).
pub const MAX_KEY_SIZE: usize = 65_535;
/// Largest value caskade accepts by default (`max_value_len`, 16 MiB).
pub const MAX_VALUE_SIZE: usize = 16 << 20;
/// Most tasks of one phase (each is an OS thread for the peers).
pub const MAX_TASKS: usize = 4096;

/// caskade side by side with sled, redb and fjall, and the raw limits of
/// the machine, in one process. Results go to stdout, progress to stderr.
#[derive(Debug, Clone, Parser)]
#[command(name = "peers", version)]
pub struct Cli {
    /// Keys loaded by the fill (and records of the raw limits).
    #[arg(long, default_value_t = 1_000_000)]
    pub keys: u64,
    /// Bytes per key.
    #[arg(long, default_value_t = 16)]
    pub key_size: usize,
    /// Bytes per value.
    #[arg(long, default_value_t = 100)]
    pub value_size: usize,
    /// Keys per atomic batch (fill and overwrite rounds).
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Seconds per timed phase (gets, puts, mixed, raw reads); fractions allowed.
    #[arg(long, default_value = "3", value_parser = parse_seconds)]
    pub duration: Duration,
    /// Task counts of the random-get phases.
    #[arg(long, value_delimiter = ',', default_value = "1,2,4,16")]
    pub get_tasks: Vec<usize>,
    /// Task counts of the non-durable put phases.
    #[arg(long, value_delimiter = ',', default_value = "1,64")]
    pub put_tasks: Vec<usize>,
    /// Task counts of the durable put phases.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    pub durable_tasks: Vec<usize>,
    /// Most durable puts per task (over all rounds); each round's slice of a
    /// durable phase also ends after --duration / --rounds.
    #[arg(long, default_value_t = 2000)]
    pub durable_ops: u64,
    /// Rounds the durable phases are interleaved with the raw fdatasync limit in.
    #[arg(long, default_value_t = 4)]
    pub rounds: u64,
    /// Reader tasks of the mixed phase (which adds one writer task).
    #[arg(long, default_value_t = 15)]
    pub mixed_readers: usize,
    /// Overwrite rounds of every key before the space is measured.
    #[arg(long, default_value_t = 3)]
    pub overwrite_rounds: u64,
    /// tokio worker threads for caskade's tasks.
    #[arg(long, default_value_t = 2)]
    pub workers: usize,
    /// Cache of each peer in MiB (sled's and redb's default: 1024).
    #[arg(long, default_value_t = 1024)]
    pub cache_mb: u64,
    /// Engines to run, in this order.
    #[arg(long, value_delimiter = ',', default_value = "caskade,sled,redb,fjall")]
    pub engines: Vec<EngineKind>,
    /// Data directory (new or empty; kept, but for the memory stage's copies).
    /// Default: a temporary directory, removed.
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Print the results as JSON instead of the table.
    #[arg(long)]
    pub json: bool,
}

/// Parses a positive, finite number of seconds (at most one hour).
fn parse_seconds(s: &str) -> Result<Duration, String> {
    let secs: f64 = s
        .trim()
        .parse()
        .map_err(|_| format!("`{s}` is not a number of seconds"))?;
    if !secs.is_finite() || secs <= 0.0 || secs > 3600.0 {
        return Err(format!("`{s}` must be more than 0 and at most 3600 seconds"));
    }
    Ok(Duration::from_secs_f64(secs))
}

fn check_tasks(name: &str, tasks: &[usize]) -> Result<(), String> {
    if tasks.is_empty() || tasks.iter().any(|&t| t == 0 || t > MAX_TASKS) {
        return Err(format!("--{name} must list task counts of 1 ..= {MAX_TASKS}"));
    }
    if (1..tasks.len()).any(|i| tasks[..i].contains(&tasks[i])) {
        return Err(format!("--{name} lists a task count twice"));
    }
    Ok(())
}

impl Cli {
    /// Validates the options into a plan.
    ///
    /// # Errors
    /// A message naming the offending option.
    pub fn plan(&self) -> Result<Plan, String> {
        if self.keys == 0 || self.batch == 0 || self.durable_ops == 0 || self.workers == 0 {
            return Err("--keys, --batch, --durable-ops and --workers must be positive".into());
        }
        if self.rounds == 0 || self.rounds > self.durable_ops {
            return Err("--rounds must be 1 ..= --durable-ops".into());
        }
        check_tasks("get-tasks", &self.get_tasks)?;
        check_tasks("put-tasks", &self.put_tasks)?;
        check_tasks("durable-tasks", &self.durable_tasks)?;
        if self.mixed_readers == 0 || self.mixed_readers >= MAX_TASKS {
            return Err(format!("--mixed-readers must be 1 ..= {}", MAX_TASKS - 1));
        }
        if self.key_size == 0 || self.key_size > MAX_KEY_SIZE {
            return Err(format!("--key-size must be 1 ..= {MAX_KEY_SIZE}"));
        }
        if self.value_size > MAX_VALUE_SIZE {
            return Err(format!("--value-size must be at most {MAX_VALUE_SIZE}"));
        }
        if self.cache_mb == 0 || self.cache_mb > 1 << 20 {
            return Err("--cache-mb must be 1 ..= 1048576".into());
        }
        if self.engines.is_empty() {
            return Err("--engines must name at least one engine".into());
        }
        if let Some(e) = self
            .engines
            .iter()
            .enumerate()
            .find_map(|(i, e)| self.engines[..i].contains(e).then_some(e))
        {
            return Err(format!("--engines lists {} twice", e.name()));
        }
        let plan = Plan {
            keys: self.keys,
            key_size: self.key_size,
            value_size: self.value_size,
            batch: self.batch,
            duration: self.duration,
            get_tasks: self.get_tasks.clone(),
            put_tasks: self.put_tasks.clone(),
            durable_tasks: self.durable_tasks.clone(),
            durable_ops: self.durable_ops,
            rounds: self.rounds,
            mixed_readers: self.mixed_readers,
            overwrite_rounds: self.overwrite_rounds,
            workers: self.workers,
            cache_bytes: self.cache_mb << 20,
            engines: self.engines.clone(),
        };
        // Distinct keys: the fill's 0..keys and the durable phases' own range.
        let most = plan.keys.max(plan.durable_keys());
        let needed = bytes_needed(most - 1);
        if plan.key_size < needed {
            return Err(format!(
                "--key-size {} cannot hold {most} distinct keys (needs at least {needed} bytes)",
                plan.key_size
            ));
        }
        Ok(plan)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Plan, String> {
        let argv = std::iter::once("peers").chain(args.iter().copied());
        Cli::try_parse_from(argv).map_err(|e| e.to_string())?.plan()
    }

    #[test]
    fn defaults_are_the_issue_workloads() {
        let p = parse(&[]).unwrap();
        assert_eq!(
            (p.keys, p.key_size, p.value_size, p.batch),
            (1_000_000, 16, 100, 1000)
        );
        assert_eq!(p.get_tasks, [1, 2, 4, 16]);
        assert_eq!(p.put_tasks, [1, 64]);
        assert_eq!(p.durable_tasks, [1, 16, 64]);
        assert_eq!((p.mixed_readers, p.overwrite_rounds, p.workers), (15, 3, 2));
        assert_eq!(
            p.engines,
            [
                EngineKind::Caskade,
                EngineKind::Sled,
                EngineKind::Redb,
                EngineKind::Fjall
            ]
        );
        assert_eq!(p.duration, Duration::from_secs(3));
    }

    #[test]
    fn lists_and_fractions_parse() {
        let p = parse(&[
            "--get-tasks",
            "1,8",
            "--engines",
            "redb,caskade",
            "--duration",
            "0.5",
        ])
        .unwrap();
        assert_eq!(p.get_tasks, [1, 8]);
        assert_eq!(p.engines, [EngineKind::Redb, EngineKind::Caskade]);
        assert_eq!(p.duration, Duration::from_millis(500));
    }

    #[test]
    fn bad_options_are_errors_not_panics() {
        for args in [
            &["--keys", "0"][..],
            &["--keys", "-5"],
            &["--duration", "0"],
            &["--duration", "NaN"],
            &["--duration", "soon"],
            &["--get-tasks", "1,0"],
            &["--durable-tasks", "16,16"],
            &["--put-tasks", ""],
            &["--durable-tasks", "100000"],
            &["--engines", "leveldb"],
            &["--engines", "sled,sled"],
            &["--key-size", "0"],
            &["--key-size", "1"],
            &["--value-size", "999999999"],
            &["--rounds", "0"],
            &["--durable-ops", "2", "--rounds", "3"],
            &["--cache-mb", "0"],
            &["--mixed-readers", "0"],
        ] {
            assert!(parse(args).is_err(), "{args:?} was accepted");
        }
    }

    #[test]
    fn key_size_must_hold_the_durable_keys_too() {
        // 200 keys fit one byte, but 2 durable tasks × 200 ops need two.
        let args = [
            "--keys",
            "200",
            "--key-size",
            "1",
            "--durable-tasks",
            "2",
            "--durable-ops",
            "200",
        ];
        assert!(parse(&args).unwrap_err().contains("--key-size"));
        assert!(
            parse(&[
                "--keys",
                "200",
                "--key-size",
                "1",
                "--durable-tasks",
                "1",
                "--durable-ops",
                "50"
            ])
            .is_ok()
        );
    }
}
