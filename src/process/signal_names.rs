//! The signals this platform has, by name: `USR1`, `SIGUSR1` and `10` all mean the same.
//!
//! The names come from signal-hook's table (every signal libc defines for the platform), plus
//! Linux's real-time signals as `RTMIN`, `RTMIN+3`, `RTMAX-1`, which have no fixed number.

use super::Signal;

/// Linux signals missing from signal-hook's table, and aliases people type.
#[cfg(target_os = "linux")]
const EXTRA: &[(&str, i32)] = &[
    ("SIGSTKFLT", libc::SIGSTKFLT),
    ("SIGPWR", libc::SIGPWR),
    ("SIGIOT", libc::SIGIOT),
    ("SIGPOLL", libc::SIGPOLL),
];
#[cfg(not(target_os = "linux"))]
const EXTRA: &[(&str, i32)] = &[];

/// The signal called `bare` (upper case, no `SIG` prefix).
pub(super) fn by_name(bare: &str) -> Option<Signal> {
    if let Some(signal) = realtime(bare) {
        return Some(signal);
    }
    if let Some((_, n)) = EXTRA.iter().find(|(name, _)| &name[3..] == bare) {
        return Some(Signal(*n));
    }
    (1..=max())
        .map(Signal)
        .find(|s| name_of(*s).is_some_and(|n| &n[3..] == bare))
}

/// `SIGUSR1`, or `SIGRTMIN+2`; `None` for a number the platform does not name.
pub(super) fn name_of(signal: Signal) -> Option<String> {
    if let Some(name) = signal_hook::low_level::signal_name(signal.0) {
        return Some(name.to_string());
    }
    if let Some((name, _)) = EXTRA.iter().find(|(_, n)| *n == signal.0) {
        return Some(name.to_string());
    }
    realtime_name(signal)
}

/// The highest signal number a user may name (`sendable` refuses what the platform lacks).
pub(super) fn max() -> i32 {
    #[cfg(target_os = "linux")]
    {
        libc::SIGRTMAX()
    }
    #[cfg(not(target_os = "linux"))]
    {
        64
    }
}

/// Every name, for error messages.
pub(super) fn all() -> Vec<String> {
    let mut names: Vec<String> = (1..=max())
        .filter_map(|n| signal_hook::low_level::signal_name(n).map(str::to_string))
        .collect();
    names.extend(EXTRA.iter().map(|(name, _)| name.to_string()));
    if cfg!(target_os = "linux") {
        names.extend([
            "SIGRTMIN".to_string(),
            "SIGRTMIN+N".into(),
            "SIGRTMAX-N".into(),
        ]);
    }
    names
}

#[cfg(target_os = "linux")]
fn realtime(bare: &str) -> Option<Signal> {
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    let number = if let Some(rest) = bare.strip_prefix("RTMIN") {
        min + offset(rest, '+')?
    } else if let Some(rest) = bare.strip_prefix("RTMAX") {
        max - offset(rest, '-')?
    } else {
        return None;
    };
    (min..=max).contains(&number).then_some(Signal(number))
}

#[cfg(target_os = "linux")]
fn offset(rest: &str, sign: char) -> Option<i32> {
    if rest.is_empty() {
        return Some(0);
    }
    rest.strip_prefix(sign)?.parse().ok()
}

#[cfg(target_os = "linux")]
fn realtime_name(signal: Signal) -> Option<String> {
    let (min, max) = (libc::SIGRTMIN(), libc::SIGRTMAX());
    if !(min..=max).contains(&signal.0) {
        return None;
    }
    Some(match signal.0 - min {
        0 => "SIGRTMIN".to_string(),
        n => format!("SIGRTMIN+{n}"),
    })
}

#[cfg(not(target_os = "linux"))]
fn realtime(_bare: &str) -> Option<Signal> {
    None
}

#[cfg(not(target_os = "linux"))]
fn realtime_name(_signal: Signal) -> Option<String> {
    None
}
