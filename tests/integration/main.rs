//! End-to-end tests: the real `cargo-hot` binary on a temp copy of `fixtures/workspace`.
//! All in one test binary so the fixture template is built once.
//!
//! Unix only: the harness signals cargo-hot with kill(2), drives it through a pty and relies
//! on sh; on Windows none of it would compile (docs/platforms.md says what is tested where).
//! Tests that read Linux's /proc are marked `ignore` elsewhere, with that reason.
#![cfg(unix)]

mod affected;
mod cli;
mod config;
mod faults;
mod handoff;
mod harness;
mod lifecycle;
mod proxy;
mod snapshots;
mod staging;
mod tui;
mod watching;
