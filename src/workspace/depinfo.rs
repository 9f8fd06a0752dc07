//! What past builds taught us ([`BuildKnowledge`]): the files each target was built from,
//! read from cargo's dep-info, and the files each build script asked to be rerun for, read
//! from its recorded output.
//!
//! This is cargo's own freshness data (see `shared/CARGO-NOTES.md`): with it, `affected` can
//! tell that a README, a `#[cfg(test)]` module or a runtime asset rebuilds nothing, instead of
//! restarting every binary of the package.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use anyhow::Context as _;

use super::{normalize, TargetId};

/// What past builds taught us; sharpens `affected`.
#[derive(Default, Debug, Clone)]
pub struct BuildKnowledge {
    /// Per target, every file its dep-info lists, lexically normalised. Entries are absolute
    /// unless `build.dep-info-basedir` made cargo write them relative to the workspace root.
    dep_info: HashMap<TargetId, HashSet<PathBuf>>,
    /// Per package id, when its build script reruns.
    build_scripts: HashMap<String, ScriptNet>,
}

/// When cargo reruns a build script (and so rebuilds its package).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum ScriptNet {
    /// It printed no `rerun-if-*` line: any file in the package directory reruns it.
    WholePackage,
    /// It printed `rerun-if-changed` (or only `rerun-if-env-changed`): these absolute paths,
    /// files or directories, rerun it; an empty list means no file does.
    Paths(Vec<PathBuf>),
}

impl BuildKnowledge {
    /// Takes in what a newer build taught: its entries replace ours.
    pub fn merge(&mut self, newer: BuildKnowledge) {
        self.dep_info.extend(newer.dep_info);
        self.build_scripts.extend(newer.build_scripts);
    }

    /// Records (replacing what was known) the dep-info of a target: the `NAME.d` file cargo
    /// writes beside the executable (`target/debug/api.d`, `target/debug/examples/x.d`).
    pub fn record_dep_info(
        &mut self,
        target: &TargetId,
        dep_info_file: &Path,
    ) -> anyhow::Result<()> {
        let files = read_dep_info(dep_info_file)
            .with_context(|| format!("failed to read the dep-info of `{}`", target.qualified()))?;
        self.dep_info.insert(target.clone(), files);
        Ok(())
    }

    /// Adds files to what a target is known to be built from: the union of the unit dep-info
    /// files (`deps/NAME-HASH.d`) of its crate and of every local library it links.
    pub(super) fn add_dep_info(&mut self, target: &TargetId, files: HashSet<PathBuf>) {
        self.dep_info
            .entry(target.clone())
            .or_default()
            .extend(files);
    }

    /// Widens what is known of a build script with one more recorded run: a quiet run makes
    /// the net the whole package, otherwise the watched paths add up.
    pub(super) fn add_build_script_run(
        &mut self,
        package_id: &str,
        package_dir: &Path,
        out_dir: &Path,
    ) -> anyhow::Result<()> {
        let net = read_script_net(package_id, package_dir, out_dir)?;
        let merged = match (self.build_scripts.remove(package_id), net) {
            (None, net) => net,
            (Some(ScriptNet::WholePackage), _) | (_, ScriptNet::WholePackage) => {
                ScriptNet::WholePackage
            }
            (Some(ScriptNet::Paths(mut old)), ScriptNet::Paths(new)) => {
                old.extend(new);
                old.sort();
                old.dedup();
                ScriptNet::Paths(old)
            }
        };
        self.build_scripts.insert(package_id.to_string(), merged);
        Ok(())
    }

    /// Every path a build script asked to be rerun for, by package id: what a watcher must
    /// watch even where its ignore rules never look (`.git/HEAD`).
    pub fn rerun_paths(&self) -> Vec<(&str, &Path)> {
        let mut out: Vec<(&str, &Path)> = self
            .build_scripts
            .iter()
            .filter_map(|(id, net)| match net {
                ScriptNet::Paths(paths) => {
                    Some(paths.iter().map(move |p| (id.as_str(), p.as_path())))
                }
                ScriptNet::WholePackage => None,
            })
            .flatten()
            .collect();
        out.sort();
        out
    }

    /// Records (replacing what was known) a build script's run. `out_dir` comes from cargo's
    /// `build-script-executed` message; the script's stdout is kept in `out_dir/../output`.
    /// Relative `rerun-if-changed` paths are relative to `package_dir`, as cargo reads them.
    pub fn record_build_script(
        &mut self,
        package_id: &str,
        package_dir: &Path,
        out_dir: &Path,
    ) -> anyhow::Result<()> {
        let net = read_script_net(package_id, package_dir, out_dir)?;
        self.build_scripts.insert(package_id.to_string(), net);
        Ok(())
    }

    pub fn has_dep_info(&self, target: &TargetId) -> bool {
        self.dep_info.contains_key(target)
    }

    pub(super) fn dep_info(&self, target: &TargetId) -> Option<&HashSet<PathBuf>> {
        self.dep_info.get(target)
    }

    pub(super) fn script_net(&self, package_id: &str) -> Option<&ScriptNet> {
        self.build_scripts.get(package_id)
    }

    #[cfg(test)]
    pub(super) fn set_dep_info(&mut self, target: TargetId, files: HashSet<PathBuf>) {
        self.dep_info.insert(target, files);
    }

    #[cfg(test)]
    pub(super) fn set_script_net(&mut self, package_id: &str, net: ScriptNet) {
        self.build_scripts.insert(package_id.to_string(), net);
    }
}

/// A path a build script asked to be rerun for: `run` watches it exactly, even where its
/// ignore rules never look.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ScriptWatch {
    /// The package whose build script printed it.
    pub package: String,
    /// Absolute, normalised.
    pub path: PathBuf,
    /// Relative to the workspace root when under it, for messages.
    pub shown: PathBuf,
}

impl std::fmt::Display for ScriptWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "build script of {} watches {}",
            self.package,
            self.shown.display()
        )
    }
}

impl super::Workspace {
    /// Every `rerun-if-changed` path of the local build scripts `known` has a run of, sorted.
    pub fn script_watches(&self, known: &BuildKnowledge) -> Vec<ScriptWatch> {
        let mut out: Vec<ScriptWatch> = known
            .rerun_paths()
            .into_iter()
            .filter_map(|(id, path)| {
                let package = self.packages.iter().find(|p| p.id == id)?;
                Some(ScriptWatch {
                    package: package.name.clone(),
                    path: path.to_path_buf(),
                    shown: self.display_path(path),
                })
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

/// The files a dep-info file lists, lexically normalised.
pub(super) fn read_dep_info(file: &Path) -> anyhow::Result<HashSet<PathBuf>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("failed to read dep-info file {}", file.display()))?;
    Ok(parse_dep_info(&text).iter().map(|p| normalize(p)).collect())
}

/// A build script's net from the `output` file beside its `OUT_DIR`.
fn read_script_net(
    package_id: &str,
    package_dir: &Path,
    out_dir: &Path,
) -> anyhow::Result<ScriptNet> {
    let output_file = out_dir
        .parent()
        .with_context(|| format!("build script OUT_DIR {} has no parent", out_dir.display()))?
        .join("output");
    let text = std::fs::read_to_string(&output_file).with_context(|| {
        format!(
            "failed to read the build script output of `{package_id}` at {}",
            output_file.display()
        )
    })?;
    let (paths, env_only) = parse_build_output(&text);
    Ok(if paths.is_empty() && !env_only {
        ScriptNet::WholePackage
    } else {
        ScriptNet::Paths(
            paths
                .iter()
                .map(|p| normalize(&package_dir.join(p)))
                .collect(),
        )
    })
}

/// The dependencies of the first rule of a Makefile-syntax dep-info file, as cargo and rustc
/// write them: `target: dep dep \` + newline + ` dep`. `\ ` is a space, `\\` a backslash,
/// `\#` a hash, `$$` a dollar. Comment lines and dependency-less phony rules (`dep:`) are
/// skipped.
pub fn parse_dep_info(text: &str) -> Vec<PathBuf> {
    logical_lines(text)
        .iter()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| parse_rule(line))
        .find(|deps| !deps.is_empty())
        .unwrap_or_default()
        .into_iter()
        .map(PathBuf::from)
        .collect()
}

/// Lines with backslash-newline continuations joined; other escapes are left for the rule
/// parser.
fn logical_lines(text: &str) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some('\n') => {
                    chars.next();
                    line.push(' ');
                }
                Some('\r') => {
                    chars.next();
                    if chars.peek() == Some(&'\n') {
                        chars.next();
                    }
                    line.push(' ');
                }
                Some(&next) => {
                    chars.next();
                    line.push('\\');
                    line.push(next);
                }
                None => {}
            },
            '\n' => lines.push(std::mem::take(&mut line)),
            '\r' => {}
            c => line.push(c),
        }
    }
    lines.push(line);
    lines
}

/// The unescaped words after the first `target:` separator of a line; `None` if the line is
/// no rule. The separator is a colon ending a word, so `C:\x` and `a:b` stay inside words.
fn parse_rule(line: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut seen_separator = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.peek() {
                Some(&e @ (' ' | '\\' | '#' | ':')) => {
                    chars.next();
                    word.push(e);
                }
                _ => word.push('\\'),
            },
            '$' if chars.peek() == Some(&'$') => {
                chars.next();
                word.push('$');
            }
            ':' if !seen_separator && chars.peek().is_none_or(|n| n.is_whitespace()) => {
                seen_separator = true;
                word.clear();
            }
            c if c.is_whitespace() => {
                if seen_separator && !word.is_empty() {
                    words.push(std::mem::take(&mut word));
                }
                word.clear();
            }
            c => word.push(c),
        }
    }
    if !seen_separator {
        return None;
    }
    if !word.is_empty() {
        words.push(word);
    }
    Some(words)
}

/// Every `rerun-if-changed` path a build script printed, in both the `cargo:` and the
/// `cargo::` syntax, as written (relative to the package directory unless absolute).
pub fn parse_rerun_if_changed(output: &str) -> Vec<String> {
    parse_build_output(output).0
}

/// The `rerun-if-changed` paths, and whether `rerun-if-env-changed` appeared: cargo drops its
/// "any file in the package" default as soon as a script prints either kind of line.
fn parse_build_output(output: &str) -> (Vec<String>, bool) {
    let mut paths = Vec::new();
    let mut env = false;
    for line in output.lines() {
        let Some(instruction) = line
            .strip_prefix("cargo::")
            .or_else(|| line.strip_prefix("cargo:"))
        else {
            continue;
        };
        if let Some(path) = instruction.strip_prefix("rerun-if-changed=") {
            let path = path.trim_end();
            if !path.is_empty() {
                paths.push(path.to_string());
            }
        } else if instruction.starts_with("rerun-if-env-changed=") {
            env = true;
        }
    }
    (paths, env)
}

#[cfg(test)]
mod tests {
    use super::super::RunKind;
    use super::*;

    fn paths(v: &[&str]) -> Vec<PathBuf> {
        v.iter().map(PathBuf::from).collect()
    }

    #[test]
    fn dep_info_as_cargo_writes_it() {
        let text = "/ws/target/debug/api: /ws/api/src/main.rs /ws/core/src/lib.rs\n";
        assert_eq!(
            parse_dep_info(text),
            paths(&["/ws/api/src/main.rs", "/ws/core/src/lib.rs"])
        );
    }

    #[test]
    fn dep_info_escapes_and_continuations() {
        let text = "/my\\ ws/target/debug/api: /my\\ ws/api/src/main.rs \\\n  /my\\ ws/a\\\\b.rs\t/x/$$HOME.txt \\\r\n /y/\\#hash.rs\n\n/my\\ ws/api/src/main.rs:\n";
        assert_eq!(
            parse_dep_info(text),
            paths(&[
                "/my ws/api/src/main.rs",
                "/my ws/a\\b.rs",
                "/x/$HOME.txt",
                "/y/#hash.rs"
            ])
        );
    }

    #[test]
    fn dep_info_skips_comments_and_phony_rules() {
        let text = "# env-dep:CARGO_PKG_NAME=api\n/ws/a.rs:\n\n/ws/out.d: /ws/a.rs /ws/b:c.rs\n/ws/x: /ws/other.rs\n";
        assert_eq!(parse_dep_info(text), paths(&["/ws/a.rs", "/ws/b:c.rs"]));
        assert_eq!(parse_dep_info(""), Vec::<PathBuf>::new());
        assert_eq!(parse_dep_info("no rule here\n"), Vec::<PathBuf>::new());
    }

    #[test]
    fn rerun_if_changed_both_syntaxes() {
        let out = "cargo:rerun-if-changed=build.rs\ncargo::rerun-if-changed=assets\r\ncargo:rustc-cfg=x\ncargo::rerun-if-env-changed=FOO\nsome noise\ncargo:warning=rerun-if-changed=no\n";
        assert_eq!(parse_rerun_if_changed(out), ["build.rs", "assets"]);
        assert!(parse_build_output(out).1);
        assert_eq!(
            parse_rerun_if_changed("cargo:rustc-link-lib=z\n"),
            Vec::<String>::new()
        );
    }

    fn build_dir_with_output(output: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let out_dir = dir.path().join("build/web-123/out");
        std::fs::create_dir_all(&out_dir).unwrap();
        std::fs::write(dir.path().join("build/web-123/output"), output).unwrap();
        (dir, out_dir)
    }

    #[test]
    fn build_script_nets() {
        let mut k = BuildKnowledge::default();
        let pkg = Path::new("/ws/web");
        let (_d1, quiet) = build_dir_with_output("cargo:rustc-cfg=x\n");
        k.record_build_script("web-id", pkg, &quiet).unwrap();
        assert_eq!(k.script_net("web-id"), Some(&ScriptNet::WholePackage));

        let (_d2, assets) = build_dir_with_output(
            "cargo::rerun-if-changed=assets\ncargo:rerun-if-changed=../.git/HEAD\n",
        );
        k.record_build_script("web-id", pkg, &assets).unwrap();
        assert_eq!(
            k.script_net("web-id"),
            Some(&ScriptNet::Paths(paths(&[
                "/ws/web/assets",
                "/ws/.git/HEAD"
            ])))
        );

        let (_d3, env) = build_dir_with_output("cargo:rerun-if-env-changed=CC\n");
        k.record_build_script("web-id", pkg, &env).unwrap();
        assert_eq!(k.script_net("web-id"), Some(&ScriptNet::Paths(vec![])));
    }

    #[test]
    fn record_errors_name_the_file() {
        let mut k = BuildKnowledge::default();
        let id = TargetId {
            package: "api".into(),
            name: "api".into(),
            kind: RunKind::Bin,
        };
        let err = k
            .record_dep_info(&id, Path::new("/nonexistent/api.d"))
            .unwrap_err();
        assert!(format!("{err:#}").contains("/nonexistent/api.d"), "{err:#}");
        assert!(!k.has_dep_info(&id));
        let err = k
            .record_build_script(
                "web-id",
                Path::new("/ws/web"),
                Path::new("/nonexistent/out"),
            )
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("/nonexistent/output"),
            "{err:#}"
        );
    }

    #[test]
    fn record_dep_info_normalises() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("api.d");
        std::fs::write(&file, "/ws/target/debug/api: /ws/api/src/../src/main.rs\n").unwrap();
        let id = TargetId {
            package: "api".into(),
            name: "api".into(),
            kind: RunKind::Bin,
        };
        let mut k = BuildKnowledge::default();
        k.record_dep_info(&id, &file).unwrap();
        assert!(k.has_dep_info(&id));
        assert!(k
            .dep_info(&id)
            .unwrap()
            .contains(Path::new("/ws/api/src/main.rs")));
    }
}
