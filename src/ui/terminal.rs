//! The terminal's state while the live view owns it, and the promise to give it back.
//!
//! The live view hides the cursor, and with single-key commands it turns off line buffering
//! and echo on stdin. Both are undone by [`restore`], which runs when the [`TerminalGuard`]
//! is dropped (the normal way out, including quitting on SIGINT/SIGTERM/SIGHUP, which the
//! engine turns into an orderly shutdown) and from a panic hook installed by [`enter`]. The
//! original settings live in a static so the panic hook can reach them.
//!
//! Ctrl-C keeps working as a signal: only line input and echo are turned off (`ICANON` and
//! `ECHO` on unix, `ENABLE_LINE_INPUT` and `ENABLE_ECHO_INPUT` on a Windows console), never
//! `ISIG` / `ENABLE_PROCESSED_INPUT`. How a mode is changed is in `terminal/unix.rs` and
//! `terminal/windows.rs`.

use std::io::Write;
use std::sync::{Mutex, Once};

#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as sys;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as sys;

/// The terminal settings to put back, if we changed them.
static SAVED: Mutex<Option<Saved>> = Mutex::new(None);

struct Saved {
    input: Option<sys::InputMode>,
    output: Option<sys::OutputMode>,
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
    let input = if keys { sys::raw_keys() } else { None };
    let output = sys::enable_escapes();
    let guard = TerminalGuard {
        keys: input.is_some(),
    };
    let mut err = std::io::stderr();
    let _ = err.write_all(b"\x1b[?25l");
    let _ = err.flush();
    if let Ok(mut saved) = SAVED.lock() {
        *saved = Some(Saved {
            input,
            output,
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
    if let Some(input) = saved.input {
        sys::restore_input(input);
    }
    if saved.cursor_hidden {
        let mut err = std::io::stderr();
        let _ = err.write_all(b"\x1b[?25h");
        let _ = err.flush();
    }
    if let Some(output) = saved.output {
        sys::restore_output(output);
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
