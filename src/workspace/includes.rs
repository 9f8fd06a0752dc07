//! The files a package's sources name literally: `include_str!("…")`, `include_bytes!("…")`,
//! `include!("…")` (also as `concat!(env!("CARGO_MANIFEST_DIR"), "…")`) and
//! `#[path = "…"]`. Rustc reads them wherever they are, even outside every package, so a
//! graph-only answer needs them to miss nothing; dep-info replaces this once a build ran.
//!
//! A path computed any other way (a macro, `OUT_DIR`) is not found: only dep-info knows it.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use regex::Regex;

use super::{normalize, Package};

fn patterns() -> &'static [(Regex, Base)] {
    static PATTERNS: OnceLock<Vec<(Regex, Base)>> = OnceLock::new();
    PATTERNS.get_or_init(|| {
        let macro_ = r"include(?:_str|_bytes)?!\s*\(\s*";
        vec![
            (
                Regex::new(&format!(r#"{macro_}"((?:[^"\\]|\\.)*)"\s*\)"#)).expect("regex"),
                Base::File,
            ),
            (
                Regex::new(&format!(
                    r#"{macro_}concat!\s*\(\s*env!\s*\(\s*"CARGO_MANIFEST_DIR"\s*\)\s*,\s*"((?:[^"\\]|\\.)*)"\s*,?\s*\)"#
                ))
                .expect("regex"),
                Base::Package,
            ),
            (
                Regex::new(r#"#\s*\[\s*path\s*=\s*"((?:[^"\\]|\\.)*)"\s*\]"#).expect("regex"),
                Base::File,
            ),
        ]
    })
}

#[derive(Clone, Copy)]
enum Base {
    /// Relative to the directory of the source file that names it.
    File,
    /// Relative to the package directory.
    Package,
}

/// Every file the package's `.rs` files name literally, absolute and normalised, sorted.
/// Unreadable files and directories are skipped: this only widens a graph-only answer.
pub(super) fn literal_reads(pkg: &Package, target_dir: &Path) -> Vec<PathBuf> {
    let mut sources = Vec::new();
    rust_files(&pkg.dir, &pkg.dir, target_dir, &mut sources);
    let mut out = Vec::new();
    for source in sources {
        let Ok(text) = std::fs::read_to_string(&source) else {
            continue;
        };
        let dir = source.parent().unwrap_or(&pkg.dir);
        for (regex, base) in patterns() {
            for caps in regex.captures_iter(&text) {
                let literal = caps[1].replace("\\\\", "\\").replace("\\\"", "\"");
                let path = match base {
                    Base::File => dir.join(&literal),
                    Base::Package => pkg.dir.join(literal.trim_start_matches('/')),
                };
                out.push(normalize(&path));
            }
        }
    }
    out.sort();
    out.dedup();
    out
}

fn rust_files(dir: &Path, pkg_dir: &Path, target_dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            let skip = path == target_dir
                || (dir == pkg_dir && name == "target")
                || name.to_str().is_some_and(|n| n.starts_with('.'))
                || path.join("Cargo.toml").is_file();
            if !skip {
                rust_files(&path, pkg_dir, target_dir, out);
            }
        } else if path.extension() == Some(OsStr::new("rs")) {
            out.push(path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_literal_includes_relative_to_file_or_package() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("ws/api");
        let write = |rel: &str, text: &str| {
            let path = dir.join(rel);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        };
        write(
            "src/main.rs",
            r#"const B: &str = include_str!("../../shared/banner.txt");
            static LOGO: &[u8] = include_bytes!(
                concat!(env!("CARGO_MANIFEST_DIR"), "/assets/logo.png")
            );
            include!("gen/table.rs");
            #[path = "../../common/util.rs"]
            mod util;
            const D: &str = include_str!(concat!(env!("OUT_DIR"), "/x"));"#,
        );
        write("fuzz/Cargo.toml", "[package]\n");
        write(
            "fuzz/src/main.rs",
            r#"include_str!("../../../secret.txt");"#,
        );
        let pkg = Package {
            name: "api".into(),
            version: "0.1.0".into(),
            id: "api".into(),
            dir: dir.clone(),
            manifest_path: dir.join("Cargo.toml"),
            is_member: true,
            targets: Vec::new(),
            build_script: None,
            default_run: None,
            hot: None,
            include: Vec::new(),
            exclude: Vec::new(),
        };
        let ws = tmp.path().join("ws");
        let mut expected = vec![
            ws.join("shared/banner.txt"),
            ws.join("api/assets/logo.png"),
            ws.join("api/src/gen/table.rs"),
            ws.join("common/util.rs"),
        ];
        expected.sort();
        assert_eq!(literal_reads(&pkg, &ws.join("target")), expected);
    }
}
