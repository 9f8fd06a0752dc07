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

/// Parses `50ms`, `2s`, `1.5s`, `1m`, `2h`, a compound such as `1m30s` or `1h5m`, or a bare
/// number of milliseconds, up to [`MAX_DURATION`].
pub fn parse_duration(text: &str) -> Result<Duration> {
    let text = text.trim();
    let expected = || format!("`{text}` is not a duration: expected e.g. 50ms, 2s, 1m30s");
    if text.is_empty() {
        bail!("{}", expected());
    }
    let mut total = 0.0;
    let mut rest = text;
    let mut parts = 0;
    while !rest.is_empty() {
        let split = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (number, after) = rest.split_at(split);
        let value: f64 = number.parse().with_context(expected)?;
        let unit_len = after
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(after.len());
        let (unit, after) = after.split_at(unit_len);
        let seconds = match unit.trim() {
            // A bare number is milliseconds, and only on its own: `1m30` is a typo.
            "" if parts == 0 && after.is_empty() => value / 1000.0,
            "" => bail!("`{text}`: every part of a compound duration needs a unit (ms, s, m, h)"),
            "ms" => value / 1000.0,
            "s" | "sec" => value,
            "m" | "min" => value * 60.0,
            "h" => value * 3600.0,
            other => bail!("unknown unit `{other}` in `{text}`: use ms, s, m or h"),
        };
        total += seconds;
        parts += 1;
        rest = after;
    }
    let duration = Duration::try_from_secs_f64(total).ok();
    match duration.filter(|d| *d <= MAX_DURATION) {
        Some(duration) => Ok(duration),
        None => bail!("`{text}` is too long: the longest duration cargo hot accepts is 24h"),
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
    fn compound_durations() {
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h5m").unwrap(), Duration::from_secs(3900));
        assert_eq!(
            parse_duration("2s500ms").unwrap(),
            Duration::from_millis(2500)
        );
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        let e = parse_duration("1m30").unwrap_err().to_string();
        assert!(e.contains("needs a unit"), "{e}");
        assert!(parse_duration("1m30parsecs").is_err());
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(Duration::from_millis(850)), "850ms");
        assert_eq!(human_duration(Duration::from_millis(2400)), "2.4s");
        assert_eq!(human_duration(Duration::from_secs(65)), "1m05s");
        assert_eq!(human_duration(Duration::from_secs(7380)), "2h03m");
    }
}
