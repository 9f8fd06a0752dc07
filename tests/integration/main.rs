//! End-to-end tests: the real `cargo-hot` binary on a temp copy of `fixtures/workspace`.
//! All in one test binary so the fixture template is built once.

mod affected;
mod cli;
mod config;
mod faults;
mod handoff;
mod harness;
mod json_schema;
mod lifecycle;
mod snapshots;
mod switchers;
mod tui;
mod watching;
