//! Shell integration: `cargo hot completions SHELL`, `cargo hot man` and `cargo hot schema`.
//!
//! All three print a document generated from the program's own definitions (the clap
//! command, the serde types of the JSON output), so they cannot drift from what the program
//! accepts and prints.

use std::io::Write;

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::{Cli, CompletionsArgs, SchemaArgs, SchemaKind};

/// The name the scripts complete: cargo runs us as `cargo-hot hot …`, and `cargo-hot …`
/// works too; a name with a space (`cargo hot`) cannot name a shell function.
const BIN: &str = "cargo-hot";

pub fn completions(args: &CompletionsArgs) -> Result<i32> {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(args.shell, &mut command, BIN, &mut out);
    print(&out)
}

pub fn man() -> Result<i32> {
    let command = Cli::command().name(BIN).bin_name("cargo hot");
    let mut out = Vec::new();
    clap_mangen::Man::new(command)
        .render(&mut out)
        .context("failed to render the man page")?;
    print(&out)
}

pub fn schema(args: &SchemaArgs) -> Result<i32> {
    let schema = match args.kind {
        SchemaKind::Events => crate::ui::json::stream_schema(),
        SchemaKind::Affected => crate::affected::report_schema(),
    };
    let mut out = serde_json::to_vec_pretty(&schema).context("failed to write the schema")?;
    out.push(b'\n');
    print(&out)
}

fn print(bytes: &[u8]) -> Result<i32> {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        // `cargo hot man | head` is fine.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        other => other.context("failed to write to stdout").map(|()| 0),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_event_variant_is_in_the_stream_schema() {
        let schema = serde_json::to_string(&crate::ui::json::stream_schema()).unwrap();
        for name in [
            "watching",
            "change",
            "affected",
            "build-started",
            "build-finished",
            "started",
            "ready",
            "exited",
            "output",
            "quit",
        ] {
            assert!(schema.contains(&format!("\"{name}\"")), "{name} missing");
        }
    }
}
