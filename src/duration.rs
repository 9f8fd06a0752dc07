//! Durations as people write them on the command line and in configuration (`50ms`, `2s`,
//! `1m`), and as cargo hot prints them (`850ms`, `2.4s`, `1m05s`).

use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// The longest duration cargo hot accepts anywhere (debounce, timeouts, delays, intervals).
/// A day is longer than anyone waits for a build or a stop, and far from where adding it to
/// an `Instant` or doubling it could overflow.
pub const MAX_DURATION: Duration = Duration::from_secs(24 * 60 * 60);

/// The shortest `--poll` interval: below it a poll of the tree runs back to back and keeps a
/// core busy (`--poll=0` spun at 100%).
pub const MIN_POLL: Duration = Duration::from_millis(10);

/// Parses `50ms`, `2s`, `1.5s`, `1m`, or a bare number of milliseconds, up to [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .with_context(|| format!("`{text}` is not a duration: expected e.g. 50ms, 2s, 1m"))?;
    let seconds = match unit.trim() {
        "" | "ms" => value / 1000.0,
        "s" | "sec" => value,
        "m" | "min" => value * 60.0,
        other => bail!("unknown unit `{other}` in `{text}`: use ms, s or m"),
    };
    let duration = Duration::try_from_secs_f64(seconds).ok();
    match duration.filter(|d| *d <= MAX_DURATION) {
        Some(duration) => Ok(duration),
        None => {
            bail!("`{text}` is too long: the longest duration cargo hot accepts is 24h (1440m)")
        }
    }
}

/// A number of milliseconds (a bare integer in the configuration), up to [`MAX_DURATION`].
pub fn duration_from_millis(ms: u64) -> Result<Duration> {
    let duration = Duration::from_millis(ms);
    if duration > MAX_DURATION {
        bail!("{ms} ms is too long: the longest duration cargo hot accepts is 24h (86400000 ms)");
    }
    Ok(duration)
}

/// A `--poll` interval: a duration of at least [`MIN_POLL`].
pub fn parse_poll_interval(text: &str) -> Result<Duration> {
    check_poll_interval(parse_duration(text)?)
}

/// Refuses a poll interval below [`MIN_POLL`], naming the minimum.
pub fn check_poll_interval(every: Duration) -> Result<Duration> {
    if every < MIN_POLL {
        bail!(
            "a poll interval of {} would poll without pause and keep a core busy: the minimum is {}",
            human_duration(every),
            human_duration(MIN_POLL)
        );
    }
    Ok(every)
}

/// `now + d`, or the farthest instant the platform can represent: a deadline never panics.
pub fn deadline_after(now: Instant, d: Duration) -> Instant {
    now.checked_add(d)
        .or_else(|| now.checked_add(MAX_DURATION))
        .unwrap_or(now)
}

/// `850ms`, `2.4s`, `1m05s`, `2h03m`.
pub fn human_duration(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        format!("{:.1}s", d.as_secs_f64())
    } else if ms < 3_600_000 {
        format!("{}m{:02}s", ms / 60_000, (ms / 1000) % 60)
    } else {
        format!("{}h{:02}m", ms / 3_600_000, (ms / 60_000) % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("50ms").unwrap(), Duration::from_millis(50));
        assert_eq!(parse_duration("2s").unwrap(), Duration::from_secs(2));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("250").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("1m").unwrap(), Duration::from_secs(60));
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("fast").is_err());
    }

    /// `--debounce 9999999999999999999s` panicked at start, and the same `--stop-timeout`
    /// panicked on SIGTERM (an `Instant` overflow).
    #[test]
    fn huge_durations_are_refused_with_the_limit() {
        let infinite = format!("{}s", "9".repeat(400));
        for huge in ["9999999999999999999s", &infinite, "1441m", "86400001"] {
            let err = format!("{:#}", parse_duration(huge).unwrap_err());
            assert!(err.contains(huge) && err.contains("24h"), "{huge}: {err}");
        }
        assert_eq!(parse_duration("1440m").unwrap(), MAX_DURATION);
        assert!(duration_from_millis(u64::MAX).is_err());
        assert_eq!(
            duration_from_millis(1500).unwrap(),
            Duration::from_millis(1500)
        );
        let now = Instant::now();
        assert!(deadline_after(now, Duration::MAX) > now);
        assert_eq!(
            deadline_after(now, Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }

    #[test]
    fn a_zero_poll_interval_is_refused_naming_the_minimum() {
        for bad in ["0", "0ms", "9ms", "0.001s"] {
            let err = format!("{:#}", parse_poll_interval(bad).unwrap_err());
            assert!(err.contains("minimum is 10ms"), "{bad}: {err}");
        }
        assert_eq!(
            parse_poll_interval("10ms").unwrap(),
            Duration::from_millis(10)
        );
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(human_duration(Duration::from_millis(2400)), "2.4s");
        assert_eq!(human_duration(Duration::from_secs(65)), "1m05s");
        assert_eq!(human_duration(Duration::from_secs(7380)), "2h03m");
    }
}
