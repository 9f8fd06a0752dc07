//! Terminal modes through termios.

/// stdin's settings before [`raw_keys`].
pub(super) type InputMode = libc::termios;

/// Nothing to change for output: a unix terminal reads escape sequences as they come.
pub(super) enum OutputMode {}

pub(super) fn enable_escapes() -> Option<OutputMode> {
    None
}

pub(super) fn restore_output(mode: OutputMode) {
    match mode {}
}

/// Line buffering and echo off on stdin; the previous settings, or None when stdin is not
/// ours to change (not a terminal, or we are not in its foreground process group, where
/// changing its mode would stop us with SIGTTOU).
pub(super) fn raw_keys() -> Option<InputMode> {
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

pub(super) fn restore_input(mode: InputMode) {
    // SAFETY: tcsetattr on fd 0 with settings tcgetattr gave us for that same fd.
    unsafe { libc::tcsetattr(libc::STDIN_FILENO, libc::TCSANOW, &mode) };
}
