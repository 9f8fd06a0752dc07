//! The terminal's state while the live view owns it, and the promise to give it back.
//!
//! The live view hides the cursor, and with single-key commands it turns off line buffering
//! and echo on stdin. Both are undone by [`restore`], which runs when the [`TerminalGuard`]
//! is dropped (the normal way out, including quitting on SIGINT/SIGTERM/SIGHUP, which the
//! engine turns into an orderly shutdown) and from a panic hook installed by [`enter`]. The
//! original settings live in a static so the panic hook can reach them.
//!
//! Ctrl-C keeps working as a signal: only `ICANON` and `ECHO` are cleared, not `ISIG`.

use std::io::Write;
use std::sync::{Mutex, Once};

/// The terminal settings to put back, if we changed them.
static SAVED: Mutex<Option<Saved>> = Mutex::new(None);

struct Saved {
    termios: Option<libc::termios>,
    cursor_hidden: bool,
}

/// Restores the terminal when dropped.
pub struct TerminalGuard {
    /// Whether keys can be read one at a time (stdin switched out of line mode).
    pub keys: bool,
}

impl Drop for TerminalGuard {
    fn drop(&mut self) {
        restore();
    }
}

/// Takes the terminal over: hides the cursor, and when `keys`, switches stdin to unbuffered,
/// unechoed input. Keys are refused (and `keys` comes back false) when we are not in the
/// terminal's foreground process group, where changing its mode would stop us (SIGTTOU).
pub fn enter(keys: bool) -> TerminalGuard {
    install_panic_hook();
    let termios = if keys { raw_keys() } else { None };
    let guard = TerminalGuard {
        keys: termios.is_some(),
    };
    let mut err = std::io::stderr();
    let _ = err.write_all(b"\x1b[?25l");
    let _ = err.flush();
    if let Ok(mut saved) = SAVED.lock() {
        *saved = Some(Saved {
            termios,
            cursor_hidden: true,
        });
    }
    guard
}

/// Puts back what [`enter`] changed. Safe to call more than once and from a panic hook.
pub fn restore() {
    // A panic while the lock is held must not keep the terminal broken.
    let saved = match SAVED.lock() {
        Ok(mut saved) => saved.take(),
        Err(poisoned) => poisoned.into_inner().take(),
    };
    let Some(saved) = saved else { return };
    if let Some(termios) = saved.termios {
        // SAFETY: tcsetattr on fd 0 with settings tcgetattr gave us for that same fd.
        unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &termios) };
    }
    if saved.cursor_hidden {
        let mut err = std::io::stderr();
        let _ = err.write_all(b"\x1b[?25h");
        let _ = err.flush();
    }
}

/// Line buffering and echo off on stdin; the previous settings, or None when stdin is not
/// ours to change.
fn raw_keys() -> Option<libc::termios> {
    // SAFETY: plain libc calls on fd 0; `termios` is plain data that tcgetattr fills in.
    unsafe {
        if libc::isatty(libc::STDIN_FILENO) != 1
            || libc::tcgetpgrp(libc::STDIN_FILENO) != libc::getpgrp()
        {
            return None;
        }
        let mut original: libc::termios = std::mem::zeroed();
        if libc::tcgetattr(libc::STDIN_FILENO, &mut original) != 0 {
            return None;
        }
        let mut keys = original;
        keys.c_lflag &= !(libc::ICANON | libc::ECHO);
        keys.c_cc[libc::VMIN] = 1;
        keys.c_cc[libc::VTIME] = 0;
        if libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &keys) != 0 {
            return None;
        }
        Some(original)
    }
}

fn install_panic_hook() {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            restore();
            previous(info);
        }));
    });
}
