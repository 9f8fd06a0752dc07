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
}

impl Key {
    pub fn from_byte(byte: u8) -> Option<Key> {
        match byte {
            b'r' | b'R' => Some(Key::RebuildAll),
            b'q' | b'Q' => Some(Key::Quit),
            b'c' | b'C' | 0x0c => Some(Key::Clear),
            b'?' | b'h' | b'H' => Some(Key::Help),
            _ => None,
        }
    }
}

/// What `?` prints.
pub const HELP: &str =
    "r rebuild + restart all · c clear the screen · q or Ctrl-C quit · ? this help";

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
    loop {
        match input.read(&mut byte) {
            Ok(0) => return,
            Ok(_) => {
                if let Some(key) = Key::from_byte(byte[0]) {
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
}
