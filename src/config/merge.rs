//! Layering: the workspace table, then each member's package table, then a `--hot-config` file,
//! merged into one [`HotConfig`] whose target names are resolved against the workspace.
//!
//! A later layer wins key by key (a target's `env` variable by variable); `ignore` globs and
//! `watch` entries add up. Command-line flags sit above all of this and are applied by
//! [`super::RunConfig`], so the full order is: command line > `--hot-config` file > package >
//! workspace > defaults.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};

use super::file::{self, Layer, Source, SourceKind, TargetLayer, WatchEntry};
use crate::hooks::Hooks;
use crate::sockets::target_matches;
use crate::workspace::{closest, TargetId, Workspace};

/// Every configuration file merged, targets resolved. Empty when nothing is configured.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HotConfig {
    /// `run`: the targets a bare `cargo hot` starts.
    pub run: Option<Vec<TargetId>>,
    pub debounce: Option<Duration>,
    pub poll: Option<Option<Duration>>,
    pub ignore: Vec<String>,
    /// `env-file`: read for every target.
    pub env_file: Option<PathBuf>,
    /// `clear`: clear the screen before each build.
    pub clear: Option<bool>,
    pub targets: BTreeMap<TargetId, TargetLayer>,
    /// With `targets` resolved to ids (empty: the owning package's targets).
    pub watch: Vec<(WatchEntry, Vec<TargetId>)>,
    /// Workspace-wide hooks; a target's own are in `targets`.
    pub hooks: Hooks,
    /// `hook-timeout`; [`HotConfig::hook_timeout`] applies the default.
    pub hook_timeout: Option<Duration>,
}

impl HotConfig {
    /// How long a hook may run before it is killed.
    pub fn hook_timeout(&self) -> Duration {
        self.hook_timeout.unwrap_or(crate::hooks::DEFAULT_TIMEOUT)
    }
}

/// Reads every layer the workspace has, plus `config_file`, and merges them.
pub fn load(workspace: &Workspace, config_file: Option<&Path>) -> Result<HotConfig> {
    let root_manifest = workspace.root_manifest();
    let mut layers = Vec::new();
    if let Some(value) = workspace.hot_metadata() {
        let source = Source {
            file: root_manifest.clone(),
            table: "workspace.metadata.hot".into(),
            base: workspace.root().to_path_buf(),
            kind: SourceKind::Workspace,
        };
        layers.push((file::parse(value, &source)?, source));
    }
    for package in workspace.packages().iter().filter(|p| p.is_member) {
        let Some(value) = &package.hot else { continue };
        let source = Source {
            file: package.manifest_path.clone(),
            table: "package.metadata.hot".into(),
            base: package.dir.clone(),
            kind: SourceKind::Package(package.name.clone()),
        };
        layers.push((file::parse(value, &source)?, source));
    }
    if let Some(path) = config_file {
        let source_base = workspace.root().to_path_buf();
        let layer = file::read_file(path, &source_base)?;
        let source = Source {
            file: path.to_path_buf(),
            table: String::new(),
            base: source_base,
            kind: SourceKind::File,
        };
        layers.push((layer, source));
    }
    merge(&layers, &workspace.runnable_targets())
}

/// Merges `layers`, lowest precedence first, naming targets among `runnable`.
pub fn merge(layers: &[(Layer, Source)], runnable: &[TargetId]) -> Result<HotConfig> {
    let mut merged = HotConfig::default();
    for (layer, source) in layers {
        let resolver = Resolver { source, runnable };
        if let Some(run) = &layer.run {
            let key = resolver.key("run");
            let ids = run
                .iter()
                .enumerate()
                .map(|(i, name)| resolver.target(name, &format!("{key}[{i}]")))
                .collect::<Result<Vec<_>>>()?;
            merged.run = Some(ids);
        }
        merged.debounce = layer.debounce.or(merged.debounce);
        merged.poll = layer.poll.or(merged.poll);
        merged.ignore.extend(layer.ignore.iter().cloned());
        merged.clear = layer.clear.or(merged.clear);
        if layer.env_file.is_some() {
            merged.env_file.clone_from(&layer.env_file);
        }
        merged.hooks.overlay(&layer.hooks);
        merged.hook_timeout = layer.hook_timeout.or(merged.hook_timeout);
        for (name, target) in &layer.targets {
            let id = resolver.target(name, &resolver.key(&format!("targets.{name}")))?;
            overlay(merged.targets.entry(id).or_default(), target);
        }
        for entry in &layer.watch {
            let ids = entry
                .targets
                .iter()
                .enumerate()
                .map(|(i, name)| resolver.target(name, &format!("{}.targets[{i}]", entry.key)))
                .collect::<Result<Vec<_>>>()?;
            merged.watch.push((entry.clone(), ids));
        }
    }
    Ok(merged)
}

/// Sets in `into` every key `over` sets.
fn overlay(into: &mut TargetLayer, over: &TargetLayer) {
    if over.args.is_some() {
        into.args.clone_from(&over.args);
    }
    into.env
        .extend(over.env.iter().map(|(k, v)| (k.clone(), v.clone())));
    if over.cwd.is_some() {
        into.cwd.clone_from(&over.cwd);
    }
    if over.env_file.is_some() {
        into.env_file.clone_from(&over.env_file);
    }
    if over.listen.is_some() {
        into.listen.clone_from(&over.listen);
    }
    if over.ready.is_some() {
        into.ready.clone_from(&over.ready);
    }
    into.proxy = over.proxy.or(into.proxy);
    if over.proxy_port_env.is_some() {
        into.proxy_port_env.clone_from(&over.proxy_port_env);
    }
    into.signal = over.signal.or(into.signal);
    into.stop_timeout = over.stop_timeout.or(into.stop_timeout);
    into.overlap = over.overlap.or(into.overlap);
    into.hooks.overlay(&over.hooks);
}

/// Turns target names as written into ids, with the errors a user can act on.
struct Resolver<'a> {
    source: &'a Source,
    runnable: &'a [TargetId],
}

impl Resolver<'_> {
    fn key(&self, key: &str) -> String {
        if self.source.table.is_empty() {
            key.to_string()
        } else {
            format!("{}.{key}", self.source.table)
        }
    }

    /// A bin or example by name or `package/name`; a package's table names only its own.
    fn target(&self, name: &str, key: &str) -> Result<TargetId> {
        let file = self.source.file.display();
        let own_package = match &self.source.kind {
            SourceKind::Package(package) => Some(package.as_str()),
            _ => None,
        };
        let candidates: Vec<&TargetId> = self
            .runnable
            .iter()
            .filter(|t| own_package.is_none_or(|p| t.package == p))
            .collect();
        let matching: Vec<&TargetId> = candidates
            .iter()
            .copied()
            .filter(|t| target_matches(name, t))
            .collect();
        match matching.as_slice() {
            [one] => Ok((*one).clone()),
            [] => {
                let mut names: Vec<String> = candidates.iter().map(|t| t.qualified()).collect();
                names.extend(candidates.iter().map(|t| t.name.clone()));
                names.sort();
                names.dedup();
                let hint = closest(&names, name)
                    .map(|s| format!("\nhelp: did you mean `{s}`?"))
                    .unwrap_or_default();
                let whose = match own_package {
                    Some(p) => format!("package `{p}`"),
                    None => "the workspace".to_string(),
                };
                bail!(
                    "{file}: `{key}`: `{name}` is not a binary or example of {whose}; expected one of: {}{hint}",
                    candidates
                        .iter()
                        .map(|t| t.qualified())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            }
            several => bail!(
                "{file}: `{key}`: `{name}` is ambiguous; write one of: {}",
                several
                    .iter()
                    .map(|t| t.qualified())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// What the `restart` and `rebuild` watch entries make of a burst of changed paths.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct WatchPlan {
    /// Targets to restart with the executable they run: no cargo call.
    pub restart: BTreeSet<TargetId>,
    /// Targets to build even if no package owns the paths.
    pub rebuild: BTreeSet<TargetId>,
    /// Paths a `restart` entry took: they are not a reason to build.
    pub handled: Vec<PathBuf>,
    /// Every path some entry decided for (`restart` or `rebuild`).
    pub matched: Vec<PathBuf>,
    /// A path an entry matched, with no `targets` and no selected target in its package.
    pub unassigned: Vec<(String, PathBuf)>,
}

impl HotConfig {
    /// Matches `paths` (absolute) against the watch entries: the first entry whose globs
    /// match a path decides for it. Only `selected` targets are restarted or rebuilt; an
    /// entry without `targets` means the selected targets of the package owning the path.
    pub fn watch_plan(
        &self,
        paths: &[PathBuf],
        owner_targets: impl Fn(&Path) -> Vec<TargetId>,
        selected: &[TargetId],
    ) -> WatchPlan {
        let mut plan = WatchPlan::default();
        let entries: Vec<_> = self
            .watch
            .iter()
            .filter(|(entry, _)| entry.action != file::WatchAction::Ignore)
            .filter_map(|(entry, ids)| Some((entry, ids, glob_set(entry)?)))
            .collect();
        for path in paths {
            let hit = entries.iter().find(|(entry, _, globs)| {
                relative_to(path, &entry.base).is_some_and(|rel| globs.is_match(rel))
            });
            let Some((entry, ids, _)) = hit else { continue };
            plan.matched.push(path.clone());
            let wanted = if ids.is_empty() {
                owner_targets(path)
            } else {
                ids.to_vec()
            };
            let targets: Vec<TargetId> = wanted
                .into_iter()
                .filter(|t| selected.contains(t))
                .collect();
            if targets.is_empty() && ids.is_empty() {
                plan.unassigned.push((entry.key.clone(), path.clone()));
            }
            match entry.action {
                file::WatchAction::Restart => {
                    plan.restart.extend(targets);
                    plan.handled.push(path.clone());
                }
                file::WatchAction::Rebuild => plan.rebuild.extend(targets),
                file::WatchAction::Ignore => {}
            }
        }
        // A target that is rebuilt restarts if its executable changed: no second restart.
        plan.restart.retain(|t| !plan.rebuild.contains(t));
        plan
    }
}

/// `path` relative to `base`, climbing out of it with `..` when it is elsewhere (a `--watch`
/// directory beside the workspace: `../assets/logo.svg`).
fn relative_to(path: &Path, base: &Path) -> Option<PathBuf> {
    if let Ok(inside) = path.strip_prefix(base) {
        return Some(inside.to_path_buf());
    }
    let common = path
        .components()
        .zip(base.components())
        .take_while(|(a, b)| a == b)
        .count();
    if common == 0 {
        return None;
    }
    let mut rel = PathBuf::new();
    for _ in base.components().skip(common) {
        rel.push("..");
    }
    rel.extend(path.components().skip(common));
    Some(rel)
}

/// The entry's globs; they were checked when the configuration was parsed.
fn glob_set(entry: &WatchEntry) -> Option<globset::GlobSet> {
    let mut builder = globset::GlobSetBuilder::new();
    for glob in &entry.paths {
        let glob = glob.strip_prefix("./").unwrap_or(glob);
        builder.add(
            globset::GlobBuilder::new(glob)
                .literal_separator(true)
                .case_insensitive(crate::workspace::PATHS_IGNORE_CASE)
                .build()
                .ok()?,
        );
    }
    builder.build().ok()
}

/// The globs of `action = "ignore"` watch entries, as gitignore lines anchored at `root`
/// (the watcher's ignore matcher is rooted there).
pub fn ignored_globs(config: &HotConfig, root: &Path) -> Vec<String> {
    config
        .watch
        .iter()
        .filter(|(entry, _)| entry.action == file::WatchAction::Ignore)
        .flat_map(|(entry, _)| {
            entry
                .paths
                .iter()
                .map(|glob| anchored_glob(&entry.base, glob, root))
        })
        .collect()
}

/// `glob`, written relative to `base`, as a gitignore line relative to `root`: `/api/x/**`.
fn anchored_glob(base: &Path, glob: &str, root: &Path) -> String {
    let glob = glob.strip_prefix("./").unwrap_or(glob);
    let rel = base.strip_prefix(root).unwrap_or(Path::new(""));
    let joined = rel.join(glob);
    format!("/{}", joined.to_string_lossy())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::process::Signal;
    use crate::workspace::RunKind;
    use std::path::PathBuf;

    fn id(package: &str, name: &str) -> TargetId {
        TargetId {
            package: package.into(),
            name: name.into(),
            kind: RunKind::Bin,
        }
    }

    fn runnable() -> Vec<TargetId> {
        vec![
            id("api", "api"),
            id("api", "cli"),
            id("tools", "cli"),
            id("worker", "worker"),
        ]
    }

    fn source(kind: SourceKind) -> Source {
        let (file, table, base) = match &kind {
            SourceKind::Workspace => ("/ws/Cargo.toml", "workspace.metadata.hot", "/ws"),
            SourceKind::Package(p) if p == "api" => {
                ("/ws/api/Cargo.toml", "package.metadata.hot", "/ws/api")
            }
            SourceKind::Package(_) => (
                "/ws/worker/Cargo.toml",
                "package.metadata.hot",
                "/ws/worker",
            ),
            SourceKind::File => ("/ws/hot.toml", "", "/ws"),
        };
        Source {
            file: file.into(),
            table: table.into(),
            base: base.into(),
            kind,
        }
    }

    fn layer(kind: SourceKind, text: &str) -> (Layer, Source) {
        let source = source(kind);
        let table: toml::Table = toml::from_str(text).unwrap();
        let value = serde_json::to_value(table).unwrap();
        (file::parse(&value, &source).unwrap(), source)
    }

    #[test]
    fn later_layers_win_key_by_key() {
        let merged = merge(
            &[
                layer(
                    SourceKind::Workspace,
                    r#"
                    debounce = "100ms"
                    poll = true
                    ignore = ["docs/**"]
                    [targets.api]
                    signal = "SIGINT"
                    stop-timeout = "10s"
                    env = { RUST_LOG = "info", A = "ws" }
                    args = ["--ws"]
                    "#,
                ),
                layer(
                    SourceKind::Package("api".into()),
                    r#"
                    [targets.api]
                    stop-timeout = "20s"
                    env = { RUST_LOG = "debug" }
                    cwd = "data"
                    "#,
                ),
                layer(
                    SourceKind::File,
                    r#"
                    debounce = "1s"
                    ignore = ["*.log"]
                    [targets.api]
                    args = ["--file"]
                    "#,
                ),
            ],
            &runnable(),
        )
        .unwrap();
        assert_eq!(merged.debounce, Some(Duration::from_secs(1)));
        assert_eq!(merged.poll, Some(Some(Duration::from_millis(500))));
        assert_eq!(merged.ignore, ["docs/**", "*.log"]);
        let api = &merged.targets[&id("api", "api")];
        // Workspace only.
        assert_eq!(api.signal, Some(Signal::INT));
        // Package over workspace.
        assert_eq!(api.stop_timeout, Some(Duration::from_secs(20)));
        assert_eq!(api.env["RUST_LOG"], "debug");
        assert_eq!(api.env["A"], "ws");
        // Package paths start at the package.
        assert_eq!(api.cwd, Some(PathBuf::from("/ws/api/data")));
        // The --hot-config file over both.
        assert_eq!(api.args, Some(vec!["--file".into()]));
    }

    #[test]
    fn run_names_bins_or_package_slash_bin() {
        let merged = merge(
            &[layer(
                SourceKind::Workspace,
                r#"run = ["worker", "tools/cli"]"#,
            )],
            &runnable(),
        )
        .unwrap();
        assert_eq!(
            merged.run,
            Some(vec![id("worker", "worker"), id("tools", "cli")])
        );

        let error = |text: &str| {
            format!(
                "{:#}",
                merge(&[layer(SourceKind::Workspace, text)], &runnable()).unwrap_err()
            )
        };
        let e = error(r#"run = ["wroker"]"#);
        assert!(
            e.contains("/ws/Cargo.toml: `workspace.metadata.hot.run[0]`"),
            "{e}"
        );
        assert!(e.contains("did you mean `worker`?"), "{e}");
        let e = error(r#"run = ["cli"]"#);
        assert!(e.contains("ambiguous"), "{e}");
        assert!(e.contains("api/cli, tools/cli"), "{e}");
        let e = error("[targets.apu]\noverlap = true");
        assert!(e.contains("`workspace.metadata.hot.targets.apu`"), "{e}");
        assert!(e.contains("did you mean `api`?"), "{e}");
    }

    #[test]
    fn a_package_table_names_only_its_own_targets() {
        // `cli` is unambiguous inside `api`.
        let merged = merge(
            &[layer(
                SourceKind::Package("api".into()),
                "[targets.cli]\noverlap = false",
            )],
            &runnable(),
        )
        .unwrap();
        assert!(merged.targets.contains_key(&id("api", "cli")));
        let result = merge(
            &[layer(
                SourceKind::Package("api".into()),
                "[targets.worker]\noverlap = false",
            )],
            &runnable(),
        );
        let e = format!("{:#}", result.unwrap_err());
        assert!(e.contains("/ws/api/Cargo.toml"), "{e}");
        assert!(
            e.contains("not a binary or example of package `api`"),
            "{e}"
        );
    }

    #[test]
    fn watch_entries_resolve_their_targets_and_ignores_are_anchored() {
        let merged = merge(
            &[
                layer(
                    SourceKind::Workspace,
                    "[[watch]]\npaths = [\"config/*.toml\"]\naction = \"restart\"\ntargets = [\"worker\"]",
                ),
                layer(
                    SourceKind::Package("api".into()),
                    "[[watch]]\npaths = [\"./notes/**\"]\naction = \"ignore\"",
                ),
            ],
            &runnable(),
        )
        .unwrap();
        assert_eq!(merged.watch[0].1, [id("worker", "worker")]);
        assert_eq!(ignored_globs(&merged, Path::new("/ws")), ["/api/notes/**"]);
    }
}

#[cfg(test)]
mod watch_tests {
    use super::*;
    use crate::workspace::RunKind;

    fn id(name: &str) -> TargetId {
        TargetId {
            package: name.into(),
            name: name.into(),
            kind: RunKind::Bin,
        }
    }

    fn entry(paths: &[&str], base: &str, action: file::WatchAction) -> WatchEntry {
        WatchEntry {
            paths: paths.iter().map(|p| p.to_string()).collect(),
            base: base.into(),
            action,
            targets: Vec::new(),
            key: "workspace.metadata.hot.watch[0]".into(),
        }
    }

    /// Watch globs ignore case exactly where file names do (Windows).
    #[test]
    fn watch_globs_follow_the_file_systems_case_rule() {
        let set = glob_set(&entry(
            &["Templates/*.HTML"],
            "/ws",
            file::WatchAction::Restart,
        ))
        .unwrap();
        assert!(set.is_match("Templates/index.HTML"));
        assert_eq!(
            set.is_match("templates/index.html"),
            crate::workspace::PATHS_IGNORE_CASE
        );
    }

    fn owner(path: &Path) -> Vec<TargetId> {
        if path.starts_with("/ws/api") {
            vec![id("api")]
        } else {
            Vec::new()
        }
    }

    #[test]
    fn restart_and_rebuild_entries() {
        let config = HotConfig {
            watch: vec![
                (
                    entry(&["templates/**"], "/ws/api", file::WatchAction::Restart),
                    Vec::new(),
                ),
                (
                    entry(&["config/*.toml"], "/ws", file::WatchAction::Rebuild),
                    vec![id("worker"), id("unselected")],
                ),
                (
                    entry(&["assets/*"], "/ws", file::WatchAction::Restart),
                    Vec::new(),
                ),
            ],
            ..HotConfig::default()
        };
        let paths: Vec<PathBuf> = [
            "/ws/api/templates/pages/index.html",
            "/ws/config/app.toml",
            // `*` stops at a slash.
            "/ws/config/nested/app.toml",
            "/ws/assets/logo.svg",
            "/ws/api/src/main.rs",
        ]
        .iter()
        .map(PathBuf::from)
        .collect();
        let plan = config.watch_plan(&paths, owner, &[id("api"), id("worker")]);
        assert_eq!(plan.restart, [id("api")].into());
        assert_eq!(plan.rebuild, [id("worker")].into());
        assert_eq!(
            plan.handled,
            [
                PathBuf::from("/ws/api/templates/pages/index.html"),
                PathBuf::from("/ws/assets/logo.svg")
            ]
        );
        assert_eq!(
            plan.unassigned,
            [(
                "workspace.metadata.hot.watch[0]".to_string(),
                PathBuf::from("/ws/assets/logo.svg")
            )]
        );
    }

    #[test]
    fn entries_reach_directories_beside_the_workspace() {
        assert_eq!(
            relative_to(Path::new("/shared/theme.css"), Path::new("/ws/api")),
            Some(PathBuf::from("../../shared/theme.css"))
        );
        let config = HotConfig {
            watch: vec![(
                entry(&["../shared/*.css"], "/ws", file::WatchAction::Rebuild),
                vec![id("api")],
            )],
            ..HotConfig::default()
        };
        let paths = [
            PathBuf::from("/shared/theme.css"),
            PathBuf::from("/shared/x.js"),
        ];
        let plan = config.watch_plan(&paths, owner, &[id("api")]);
        assert_eq!(plan.rebuild, [id("api")].into());
        assert_eq!(plan.matched, [PathBuf::from("/shared/theme.css")]);
        let plan = config.watch_plan(&paths[1..], owner, &[id("api")]);
        assert!(plan.rebuild.is_empty());
    }
}
