//! Durations as people write them on the command line and in configuration (`50ms`, `2s`,
//! `1m`), and as cargo hot prints them (`850ms`, `2.4s`, `1m05s`).

use std::time::Duration;

use anyhow::{bail, Context, Result};

/// Parses `50ms`, `2s`, `1.5s`, `1m`, `2h`, a compound such as `1m30s` or `1h5m`, or a bare
/// number of milliseconds.
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
    Duration::try_from_secs_f64(total).with_context(|| format!("`{text}` is out of range"))
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
        assert!(parse_duration("").is_err());
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
