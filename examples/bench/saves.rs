//! Issue 13, the quiet period: what a build started at the first event of a save would do.
//! Three ways editors save `core/src/lib.rs` (a plain rewrite, write-then-rename, vim's
//! probe-backup-write) and a "save all" of three files, each four times, under the default
//! quiet period (10 ms, or 2 ms once every file is closed), `--debounce 10ms` and
//! `--debounce 0ms` (a build at the first event, which a trigger on the leading edge is too):
//! builds started, cancelled by the rest of the same save, and restarts.

use std::fs;
use std::path::Path;

use anyhow::{Context, Result};

use crate::hot::{Hot, BUILD_TIMEOUT};
use crate::trees;

/// One editor's way of writing `text` to `path`.
struct Style {
    name: &'static str,
    save: fn(&Path, &str) -> Result<()>,
}

const STYLES: [Style; 4] = [
    Style {
        name: "rewrite in place (truncate, write)",
        save: |path, text| trees::write(path, text),
    },
    Style {
        name: "write a temp file, rename it over",
        save: |path, text| {
            let tmp = path.with_extension("rs.tmp~");
            trees::write(&tmp, text)?;
            fs::rename(&tmp, path).with_context(|| format!("failed to rename {tmp:?}"))
        },
    },
    Style {
        name: "vim (probe file 4913, backup rename, write, drop backup)",
        save: |path, text| {
            let dir = path.parent().context("no parent")?;
            let probe = dir.join("4913");
            fs::write(&probe, "").context("failed to write the probe")?;
            fs::remove_file(&probe).context("failed to remove the probe")?;
            let backup = path.with_extension("rs~");
            fs::rename(path, &backup).context("failed to make the backup")?;
            trees::write(path, text)?;
            fs::remove_file(&backup).context("failed to remove the backup")
        },
    },
    Style {
        name: "save all: three files back to back (lib.rs and two new modules)",
        save: |path, text| {
            trees::write(path, text)?;
            let dir = path.parent().context("no parent")?;
            trees::write(&dir.join("saved_a.rs"), text)?;
            trees::write(&dir.join("saved_b.rs"), text)
        },
    },
];

/// Per style and debounce: (style, debounce, builds started, cancelled, finished, restarts)
/// over `saves` saves.
pub type SaveRow = (&'static str, &'static str, usize, usize, usize, usize);

pub fn save_styles(bin: &Path, ws: &Path, saves: usize) -> Result<Vec<SaveRow>> {
    let mut rows = Vec::new();
    for style in &STYLES {
        for debounce in ["default", "10ms", "0ms"] {
            let mut args = vec!["-p", "api"];
            if debounce != "default" {
                args.extend(["--debounce", debounce]);
            }
            let mut hot = Hot::start(bin, ws, &args)?;
            hot.target_up("api", 0)?;
            let mark = hot.mark();
            for i in 0..saves {
                let path = ws.join("core/src/lib.rs");
                let text = fs::read_to_string(&path).context("failed to read core/src/lib.rs")?;
                let start = text
                    .find("pub const VERSION: &str = \"")
                    .context("no VERSION")?
                    + "pub const VERSION: &str = \"".len();
                let end = start + text[start..].find('"').context("unterminated VERSION")?;
                let new = format!("{}s{i}{debounce}{}", &text[..start], &text[end..]);
                let before = hot.mark();
                (style.save)(&path, &new)?;
                hot.target_up("api", before)?;
            }
            // A later round of the last save would show up before this sentinel's change.
            trees::write(&ws.join("docs/README.md"), "sentinel\n")?;
            hot.wait_from("the sentinel", mark, BUILD_TIMEOUT, |s| {
                s.kind() == "change" && s.event["paths"].to_string().contains("docs/README.md")
            })?;
            let count = |kind: &str| hot.seen[mark..].iter().filter(|s| s.kind() == kind).count();
            rows.push((
                style.name,
                debounce,
                count("build-started"),
                count("build-cancelled"),
                count("build-finished"),
                count("started"),
            ));
            hot.stop()?;
        }
    }
    Ok(rows)
}

pub fn print(rows: &[SaveRow], saves: usize) {
    println!();
    println!("### The quiet period: {saves} saves of core/src/lib.rs per editor style (std-only fixture)");
    println!();
    println!("| save style | --debounce | builds started | cancelled by the same save | completed | restarts |");
    println!("|---|---|---|---|---|---|");
    for (style, debounce, started, cancelled, finished, restarts) in rows {
        println!("| {style} | {debounce} | {started} | {cancelled} | {finished} | {restarts} |");
    }
}
