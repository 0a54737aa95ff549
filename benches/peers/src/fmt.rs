//! Number formatting of the report: rates, ratios, byte counts, durations.

use std::time::Duration;

use crate::results::Unit;

/// A value in a row's unit.
pub fn fmt_value(unit: Unit, v: f64) -> String {
    match unit {
        Unit::OpsPerSec => fmt_rate(v),
        Unit::Seconds => fmt_duration(Duration::from_secs_f64(v.max(0.0))),
        Unit::RawRatio => format!("{v:.2}x"),
        Unit::BytesPerKey => format!("{v:.0} B"),
    }
}

/// A ratio with three significant digits.
pub fn fmt_ratio(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}x")
    } else if x >= 10.0 {
        format!("{x:.1}x")
    } else if x >= 1.0 {
        format!("{x:.2}x")
    } else {
        format!("{x:.3}x")
    }
}

/// A rate: `7.08 M`, `342.9 k`, `812`.
pub fn fmt_rate(r: f64) -> String {
    if r >= 1e6 {
        format!("{:.2} M", r / 1e6)
    } else if r >= 1e3 {
        format!("{:.1} k", r / 1e3)
    } else {
        format!("{r:.0}")
    }
}

/// A byte count: `110.6 MiB`.
pub fn fmt_bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = b;
    let mut i = 0;
    while v >= 1024.0 && i + 1 < UNITS.len() {
        v /= 1024.0;
        i += 1;
    }
    if i == 0 {
        format!("{v:.0} B")
    } else {
        format!("{v:.1} {}", UNITS[i])
    }
}

/// A duration: `50 ns`, `1.7 µs`, `2.34 ms`, `1.17 s`.
pub fn fmt_duration(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else {
        format!("{:.2} s", ns as f64 / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(fmt_rate(7_080_000.0), "7.08 M");
        assert_eq!(fmt_rate(342_900.0), "342.9 k");
        assert_eq!(fmt_rate(812.0), "812");
        assert_eq!(fmt_ratio(0.0481), "0.048x");
        assert_eq!(fmt_ratio(8.144), "8.14x");
        assert_eq!(fmt_bytes(116_000_000.0), "110.6 MiB");
        assert_eq!(fmt_duration(Duration::from_nanos(1700)), "1.7 µs");
        assert_eq!(fmt_duration(Duration::from_millis(1170)), "1.17 s");
    }
}
