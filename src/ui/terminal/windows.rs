//! Console modes: line input and echo off on stdin for single keys, and virtual-terminal
//! processing on stderr so the live view's escape sequences (cursor, colours) are understood
//! by consoles that do not enable it themselves (conhost before Windows Terminal).

use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE};
use windows_sys::Win32::System::Console::{
    GetConsoleMode, GetStdHandle, SetConsoleMode, CONSOLE_MODE, ENABLE_ECHO_INPUT,
    ENABLE_LINE_INPUT, ENABLE_VIRTUAL_TERMINAL_PROCESSING, STD_ERROR_HANDLE, STD_HANDLE,
    STD_INPUT_HANDLE,
};

/// stdin's console mode before [`raw_keys`].
pub(super) struct InputMode(CONSOLE_MODE);

/// stderr's console mode before [`enable_escapes`].
pub(super) struct OutputMode(CONSOLE_MODE);

/// The console mode of a standard handle, or None when it is not a console.
fn mode_of(which: STD_HANDLE) -> Option<(HANDLE, CONSOLE_MODE)> {
    // SAFETY: GetStdHandle has no preconditions; the handle is not ours to close.
    let handle = unsafe { GetStdHandle(which) };
    if handle.is_null() || handle == INVALID_HANDLE_VALUE {
        return None;
    }
    let mut mode: CONSOLE_MODE = 0;
    // SAFETY: a standard handle and a writable mode; fails for pipes and files.
    (unsafe { GetConsoleMode(handle, &mut mode) } != 0).then_some((handle, mode))
}

fn set_mode(which: STD_HANDLE, mode: CONSOLE_MODE) -> bool {
    match mode_of(which) {
        // SAFETY: setting the mode of a console handle we just read.
        Some((handle, _)) => unsafe { SetConsoleMode(handle, mode) != 0 },
        None => false,
    }
}

/// Line input and echo off (Ctrl-C stays a signal: processed input is left on).
pub(super) fn raw_keys() -> Option<InputMode> {
    let (_, original) = mode_of(STD_INPUT_HANDLE)?;
    let keys = original & !(ENABLE_LINE_INPUT | ENABLE_ECHO_INPUT);
    set_mode(STD_INPUT_HANDLE, keys).then_some(InputMode(original))
}

pub(super) fn restore_input(mode: InputMode) {
    set_mode(STD_INPUT_HANDLE, mode.0);
}

/// Turns on escape-sequence processing on stderr when it is off; the mode to put back.
pub(super) fn enable_escapes() -> Option<OutputMode> {
    let (_, original) = mode_of(STD_ERROR_HANDLE)?;
    if original & ENABLE_VIRTUAL_TERMINAL_PROCESSING != 0 {
        return None;
    }
    set_mode(
        STD_ERROR_HANDLE,
        original | ENABLE_VIRTUAL_TERMINAL_PROCESSING,
    )
    .then_some(OutputMode(original))
}

pub(super) fn restore_output(mode: OutputMode) {
    set_mode(STD_ERROR_HANDLE, mode.0);
}
