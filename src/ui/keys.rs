//! Single-key commands: a thread reads stdin one byte at a time and hands the engine a
//! [`Key`] on a channel, which its `select!` loop waits on like any other input.
//!
//! Only started in the live view, with stdin a terminal that no target claims (`--stdin`),
//! after `terminal::enter` switched it out of line mode. Ctrl-C stays a signal (SIGINT) and
//! reaches the engine the usual way.

use std::io::Read;

use anyhow::{Context, Result};
use crossbeam_channel::{Receiver, Sender};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// `r`: rebuild every target and restart all of them, changed or not.
    RebuildAll,
    /// `q`: quit, stopping every target.
    Quit,
    /// `c`: clear the screen.
    Clear,
    /// `?`: list the keys.
    Help,
    /// `1`…`9`: restart that target (numbered as in the status area) with the executable it
    /// runs.
    Restart(usize),
    /// `s` then `1`…`9`: stop that target, or start it again if it is stopped.
    StopStart(usize),
    /// `p`: pause watching (changes are kept), or resume it.
    Pause,
}

/// Turns bytes into keys; `s` waits for the number that follows it.
#[derive(Debug, Default)]
pub struct KeyParser {
    after_s: bool,
}

impl KeyParser {
    pub fn feed(&mut self, byte: u8) -> Option<Key> {
        let digit = (b'1'..=b'9')
            .contains(&byte)
            .then(|| usize::from(byte - b'0'));
        if std::mem::take(&mut self.after_s) {
            return digit.map(Key::StopStart);
        }
        if let Some(n) = digit {
            return Some(Key::Restart(n));
        }
        match byte {
            b'r' | b'R' => Some(Key::RebuildAll),
            b'q' | b'Q' => Some(Key::Quit),
            b'c' | b'C' | 0x0c => Some(Key::Clear),
            b'?' | b'h' | b'H' => Some(Key::Help),
            b'p' | b'P' => Some(Key::Pause),
            b's' | b'S' => {
                self.after_s = true;
                None
            }
            _ => None,
        }
    }
}

/// What `?` prints.
pub const HELP: &str = "r rebuild + restart all · 1-9 restart that target · s then 1-9 stop/start it · p pause/resume watching · c clear · q quit · ? this help";

/// What `?` prints for `test|check|clippy`, which have no targets to restart.
pub const ROUNDS_HELP: &str = "p pause/resume watching · c clear · q quit · ? this help";

/// The footer: the keys a user needs most.
pub const HINT: &str =
    "r rebuild + restart all · 1-9 restart one · s1-9 stop/start · p pause · q quit · ? help";

/// Starts the reader thread. It ends at EOF or once the engine stops listening; a read that
/// blocks forever at exit is fine, the process is going away.
pub fn start() -> Result<Receiver<Key>> {
    let (tx, rx) = crossbeam_channel::unbounded();
    std::thread::Builder::new()
        .name("keys".into())
        .spawn(move || read_keys(std::io::stdin().lock(), &tx))
        .context("failed to start the key reader thread")?;
    Ok(rx)
}

fn read_keys(mut input: impl Read, tx: &Sender<Key>) {
    let mut byte = [0u8; 1];
    let mut parser = KeyParser::default();
    loop {
        match input.read(&mut byte) {
            Ok(0) => return,
            Ok(_) => {
                if let Some(key) = parser.feed(byte[0]) {
                    if tx.send(key).is_err() {
                        return;
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_and_others_are_ignored() {
        let (tx, rx) = crossbeam_channel::unbounded();
        // An arrow key's escape sequence must not turn into commands.
        read_keys(&b"r\x1b[Axq?c"[..], &tx);
        let keys: Vec<Key> = rx.try_iter().collect();
        assert_eq!(keys, [Key::RebuildAll, Key::Quit, Key::Help, Key::Clear]);
    }

    #[test]
    fn numbers_restart_and_s_then_a_number_stops_or_starts() {
        let (tx, rx) = crossbeam_channel::unbounded();
        read_keys(&b"2s3p0sxs9"[..], &tx);
        let keys: Vec<Key> = rx.try_iter().collect();
        // `0` names no target; `s` followed by something else than a number is dropped
        // with it.
        assert_eq!(
            keys,
            [
                Key::Restart(2),
                Key::StopStart(3),
                Key::Pause,
                Key::StopStart(9)
            ]
        );
    }
}
