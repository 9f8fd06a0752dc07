//! Target selection: which bins and examples `-p`, `--bin`, `--example`, `--workspace` and
//! `--exclude` pick, following `cargo run`/`cargo build` so that `cargo hot` runs what the
//! user would expect from cargo, and fails with the same kind of message when it cannot tell.

use std::path::Path;

use anyhow::bail;

use super::{Package, RunKind, TargetId, TargetKind, Workspace};

/// The package and target selection flags, as given on the command line.
#[derive(Default, Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    /// `-p SPEC`: a package name, `name@version`, or a glob like cargo accepts.
    pub packages: Vec<String>,
    pub bins: Vec<String>,
    pub examples: Vec<String>,
    pub workspace: bool,
    pub exclude: Vec<String>,
    /// `--bins`: every bin of the selected packages.
    pub all_bins: bool,
    /// `--examples`: every example of the selected packages.
    pub all_examples: bool,
}

impl Workspace {
    /// The targets the selection names, sorted and deduplicated.
    ///
    /// `cwd` is where cargo would start looking for a manifest: the working directory, or the
    /// directory of `--manifest-path` when one is given. It only matters when no package or
    /// target is named.
    pub fn select(&self, sel: &Selection, cwd: &Path) -> anyhow::Result<Vec<TargetId>> {
        if !sel.exclude.is_empty() && !sel.workspace {
            bail!("--exclude can only be used together with --workspace");
        }
        let named_targets = !sel.bins.is_empty() || !sel.examples.is_empty();
        let all_of_kind = sel.all_bins || sel.all_examples;
        // Like cargo, `--workspace` wins over `-p`.
        let scope: Vec<usize> = if sel.workspace {
            self.members_except(&sel.exclude)?
        } else if !sel.packages.is_empty() {
            self.resolve_specs(&sel.packages)?
        } else if named_targets {
            self.members().collect()
        } else if all_of_kind {
            // `cargo build --bins` alone: the package around `cwd`, or the default members.
            self.default_packages(cwd)
        } else {
            return self.default_targets(cwd);
        };

        let mut out = Vec::new();
        if named_targets || all_of_kind {
            for name in &sel.bins {
                out.extend(self.named_target(&scope, name, RunKind::Bin)?);
            }
            for name in &sel.examples {
                out.extend(self.named_target(&scope, name, RunKind::Example)?);
            }
            for (on, kind, flag) in [
                (sel.all_bins, RunKind::Bin, "--bins"),
                (sel.all_examples, RunKind::Example, "--examples"),
            ] {
                if !on {
                    continue;
                }
                let found: Vec<TargetId> = scope
                    .iter()
                    .flat_map(|&p| runnable(&self.packages[p], kind))
                    .collect();
                if found.is_empty() {
                    let names: Vec<&str> = scope
                        .iter()
                        .map(|&p| self.packages[p].name.as_str())
                        .collect();
                    bail!(
                        "{flag}: no such target in package(s) `{}`",
                        names.join("`, `")
                    );
                }
                out.extend(found);
            }
        } else {
            for &p in &scope {
                let bins = runnable(&self.packages[p], RunKind::Bin);
                // `--workspace` skips library-only members; `-p lib` is a mistake to report.
                if bins.is_empty() && !sel.workspace {
                    bail!("package `{}` has no binaries to run", self.packages[p].name);
                }
                out.extend(bins);
            }
            if out.is_empty() {
                bail!("no workspace member has a binary to run");
            }
        }
        out.sort();
        out.dedup();
        Ok(out)
    }

    pub(super) fn members(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.packages.len()).filter(|&i| self.packages[i].is_member)
    }

    fn members_except(&self, exclude: &[String]) -> anyhow::Result<Vec<usize>> {
        let mut excluded = Vec::new();
        for spec in exclude {
            let matched: Vec<usize> = self.members().filter(|&i| self.matches(spec, i)).collect();
            if matched.is_empty() {
                bail!(
                    "excluded package `{spec}` not found in the workspace{}",
                    self.listing(self.members(), spec)
                );
            }
            excluded.extend(matched);
        }
        Ok(self.members().filter(|i| !excluded.contains(i)).collect())
    }

    /// `-p` specs may name any local package, members or path dependencies.
    fn resolve_specs(&self, specs: &[String]) -> anyhow::Result<Vec<usize>> {
        let mut out = Vec::new();
        for spec in specs {
            let matched: Vec<usize> = (0..self.packages.len())
                .filter(|&i| self.matches(spec, i))
                .collect();
            if matched.is_empty() {
                bail!(
                    "package `{spec}` not found in the workspace{}",
                    self.listing(0..self.packages.len(), spec)
                );
            }
            out.extend(matched);
        }
        Ok(out)
    }

    /// `name`, `name@version` (a version prefix like `1.2` is enough) or a glob pattern.
    fn matches(&self, spec: &str, package: usize) -> bool {
        let p = &self.packages[package];
        if let Some((name, version)) = spec.split_once('@') {
            return p.name == name
                && (p.version == version || p.version.starts_with(&format!("{version}.")));
        }
        if spec.contains(['*', '?', '[']) {
            return globset::Glob::new(spec)
                .map(|g| g.compile_matcher().is_match(&p.name))
                .unwrap_or(false);
        }
        p.name == spec
    }

    /// "; available: a, b" plus a hint when one name is close to the misspelt one.
    fn listing(&self, packages: impl Iterator<Item = usize>, wanted: &str) -> String {
        let names: Vec<String> = packages.map(|i| self.packages[i].name.clone()).collect();
        available(&names, wanted)
    }

    fn named_target(
        &self,
        scope: &[usize],
        name: &str,
        kind: RunKind,
    ) -> anyhow::Result<Vec<TargetId>> {
        let candidates: Vec<TargetId> = scope
            .iter()
            .flat_map(|&p| runnable(&self.packages[p], kind))
            .collect();
        let found: Vec<TargetId> = candidates
            .iter()
            .filter(|t| t.name == name)
            .cloned()
            .collect();
        if found.is_empty() {
            let mut names: Vec<String> = candidates.into_iter().map(|t| t.name).collect();
            names.sort();
            names.dedup();
            let kind = match kind {
                RunKind::Bin => "bin",
                RunKind::Example => "example",
            };
            bail!("no {kind} target named `{name}`{}", available(&names, name));
        }
        Ok(found)
    }

    /// Cargo's rule when nothing is named: the package around `cwd`, or the default members
    /// at the root; then the one `default-run`, else the only binary.
    fn default_targets(&self, cwd: &Path) -> anyhow::Result<Vec<TargetId>> {
        let pkgs = self.default_packages(cwd);

        let bins: Vec<(usize, TargetId)> = pkgs
            .iter()
            .flat_map(|&p| {
                runnable(&self.packages[p], RunKind::Bin)
                    .into_iter()
                    .map(move |t| (p, t))
            })
            .collect();
        let default_runs: Vec<&str> = pkgs
            .iter()
            .filter_map(|&p| self.packages[p].default_run.as_deref())
            .collect();
        if let [default_run] = default_runs[..] {
            let found: Vec<TargetId> = bins
                .into_iter()
                .filter(|(_, t)| t.name == default_run)
                .map(|(_, t)| t)
                .collect();
            if found.is_empty() {
                bail!("the `default-run` binary `{default_run}` does not exist");
            }
            return Ok(found);
        }
        match &bins[..] {
            [(_, only)] => Ok(vec![only.clone()]),
            [] => {
                let names: Vec<&str> = pkgs
                    .iter()
                    .map(|&p| self.packages[p].name.as_str())
                    .collect();
                bail!(
                    "a bin target must be available for `cargo hot`; none in package(s) `{}`",
                    names.join("`, `")
                )
            }
            _ => {
                let mut names: Vec<String> = bins
                    .iter()
                    .map(|(p, t)| with_features(&self.packages[*p], &t.name))
                    .collect();
                names.sort();
                bail!(
                    "`cargo hot` could not determine which binary to run. Use the `--bin` option \
                     to specify a binary, or the `default-run` manifest key.\n\
                     available binaries: {}",
                    names.join(", ")
                )
            }
        }
    }
}

impl Workspace {
    /// The packages cargo acts on when none is named: the member around `cwd`, else the
    /// default members.
    fn default_packages(&self, cwd: &Path) -> Vec<usize> {
        let cwd = self.absolute(cwd);
        let current = self
            .members()
            .filter(|&i| {
                cwd.starts_with(&self.packages[i].dir) && self.packages[i].dir != self.root
            })
            .max_by_key(|&i| self.packages[i].dir.components().count());
        match current {
            Some(p) => vec![p],
            None => self.default_members.clone(),
        }
    }

    /// Every bin and example of every member: what a config may name.
    pub fn runnable_targets(&self) -> Vec<TargetId> {
        self.members()
            .flat_map(|i| {
                let p = &self.packages[i];
                runnable(p, RunKind::Bin)
                    .into_iter()
                    .chain(runnable(p, RunKind::Example))
            })
            .collect()
    }
}

/// The package's targets of one runnable kind.
fn runnable(p: &Package, kind: RunKind) -> Vec<TargetId> {
    p.targets
        .iter()
        .filter(|t| t.kind.run_kind() == Some(kind))
        .map(|t| TargetId {
            package: p.name.clone(),
            name: t.name.clone(),
            kind,
        })
        .collect()
}

/// A binary name as listed to the user: required features are shown, not filtered, since
/// whether they are enabled is cargo's call.
fn with_features(p: &Package, name: &str) -> String {
    let required = p
        .targets
        .iter()
        .find(|t| t.name == name && t.kind == TargetKind::Bin)
        .map(|t| t.required_features.join(", "))
        .unwrap_or_default();
    if required.is_empty() {
        name.to_string()
    } else {
        format!("{name} (required-features: {required})")
    }
}

fn available(names: &[String], wanted: &str) -> String {
    let list = if names.is_empty() {
        "(none)".to_string()
    } else {
        names.join(", ")
    };
    let hint = closest(names, wanted)
        .map(|s| format!("\nhelp: a similar name exists: `{s}`"))
        .unwrap_or_default();
    format!("; available: {list}{hint}")
}

/// The name closest to `wanted`, if it is close enough to be a typo.
pub(crate) fn closest<'a>(names: &'a [String], wanted: &str) -> Option<&'a str> {
    let limit = (wanted.chars().count() / 3).clamp(1, 3);
    names
        .iter()
        .map(|n| (edit_distance(n, wanted), n))
        .filter(|(d, _)| *d <= limit)
        .min()
        .map(|(_, n)| n.as_str())
}

/// Levenshtein distance, counting an adjacent swap as one edit (`wroker` → `worker`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

#[cfg(test)]
mod tests {
    use super::super::testutil::{bin_id, example_id, TestWs, WsBuilder};
    use super::*;

    /// api: bins api (default-run) and client, example demo; worker: one bin; tools: two bins,
    /// one needing a feature; core: lib only.
    fn ws() -> TestWs {
        WsBuilder::new()
            .pkg("api", "api")
            .bin("api", "src/main.rs")
            .bin("client", "src/bin/client.rs")
            .example("demo", "examples/demo.rs")
            .default_run("api")
            .pkg("worker", "worker")
            .bin("worker", "src/main.rs")
            .pkg("tools", "tools")
            .bin("a", "src/bin/a.rs")
            .bin_requiring("b", "src/bin/b.rs", &["extra"])
            .pkg("core", "core")
            .lib()
            .build()
    }

    fn select(ws: &TestWs, sel: Selection, cwd: &str) -> anyhow::Result<Vec<TargetId>> {
        ws.select(&sel, &ws.path(cwd))
    }

    fn error(result: anyhow::Result<Vec<TargetId>>) -> String {
        format!("{:#}", result.expect_err("selection should fail"))
    }

    #[test]
    fn cwd_picks_the_package_then_default_run_or_only_bin() {
        let ws = ws();
        let none = Selection::default();
        assert_eq!(
            select(&ws, none.clone(), "api/src").unwrap(),
            [bin_id("api", "api")]
        );
        assert_eq!(
            select(&ws, none.clone(), "worker").unwrap(),
            [bin_id("worker", "worker")]
        );
        let err = error(select(&ws, none.clone(), "tools/src/bin"));
        assert!(
            err.contains("`cargo hot` could not determine which binary to run. Use the `--bin` option to specify a binary, or the `default-run` manifest key."),
            "{err}"
        );
        assert!(
            err.contains("available binaries: a, b (required-features: extra)"),
            "{err}"
        );
        let err = error(select(&ws, none, "core"));
        assert!(err.contains("a bin target must be available"), "{err}");
        assert!(err.contains("`core`"), "{err}");
    }

    #[test]
    fn virtual_root_uses_default_members() {
        // All members by default; api's is the only default-run among them, so it decides.
        assert_eq!(
            select(&ws(), Selection::default(), ".").unwrap(),
            [bin_id("api", "api")]
        );

        let ambiguous = WsBuilder::new()
            .pkg("api", "api")
            .bin("api", "src/main.rs")
            .pkg("worker", "worker")
            .bin("worker", "src/main.rs")
            .bin_requiring("b", "src/bin/b.rs", &["extra"])
            .build();
        let err = error(select(&ambiguous, Selection::default(), "."));
        assert!(
            err.contains("available binaries: api, b (required-features: extra), worker"),
            "{err}"
        );

        let only_worker = WsBuilder::new()
            .pkg("api", "api")
            .bin("api", "src/main.rs")
            .bin("client", "src/bin/client.rs")
            .pkg("worker", "worker")
            .bin("worker", "src/main.rs")
            .default_members(&["worker"])
            .build();
        assert_eq!(
            select(&only_worker, Selection::default(), "").unwrap(),
            [bin_id("worker", "worker")]
        );

        // A single default-run among the default members decides.
        let one_default_run = WsBuilder::new()
            .pkg("api", "api")
            .bin("api", "src/main.rs")
            .bin("client", "src/bin/client.rs")
            .default_run("client")
            .pkg("core", "core")
            .lib()
            .build();
        assert_eq!(
            select(&one_default_run, Selection::default(), "docs").unwrap(),
            [bin_id("api", "client")]
        );
    }

    #[test]
    fn package_selects_all_its_bins() {
        let ws = ws();
        let sel = Selection {
            packages: vec!["api".into(), "worker@0.1".into()],
            ..Selection::default()
        };
        assert_eq!(
            select(&ws, sel, "tools").unwrap(),
            [
                bin_id("api", "api"),
                bin_id("api", "client"),
                bin_id("worker", "worker")
            ]
        );
        let lib_only = Selection {
            packages: vec!["core".into()],
            ..Selection::default()
        };
        assert!(error(select(&ws, lib_only, ".")).contains("package `core` has no binaries"));
        let typo = Selection {
            packages: vec!["wroker".into()],
            ..Selection::default()
        };
        let err = error(select(&ws, typo, "."));
        assert!(
            err.contains(
                "package `wroker` not found in the workspace; available: api, core, tools, worker"
            ),
            "{err}"
        );
        assert!(err.contains("similar name exists: `worker`"), "{err}");
    }

    #[test]
    fn bins_and_examples_by_name() {
        let ws = ws();
        let sel = Selection {
            bins: vec!["worker".into(), "client".into(), "worker".into()],
            examples: vec!["demo".into()],
            ..Selection::default()
        };
        assert_eq!(
            select(&ws, sel, "tools").unwrap(),
            [
                bin_id("api", "client"),
                example_id("api", "demo"),
                bin_id("worker", "worker")
            ]
        );
        let typo = Selection {
            bins: vec!["wroker".into()],
            ..Selection::default()
        };
        let err = error(select(&ws, typo, "."));
        assert!(
            err.contains("no bin target named `wroker`; available: a, api, b, client, worker"),
            "{err}"
        );
        assert!(err.contains("`worker`"), "{err}");
        let far = Selection {
            examples: vec!["zzz".into()],
            ..Selection::default()
        };
        let err = error(select(&ws, far, "."));
        assert_eq!(err, "no example target named `zzz`; available: demo");
        // `-p` narrows the search.
        let narrowed = Selection {
            packages: vec!["worker".into()],
            bins: vec!["api".into()],
            ..Selection::default()
        };
        let err = error(select(&ws, narrowed, "."));
        assert!(
            err.contains("no bin target named `api`; available: worker"),
            "{err}"
        );
    }

    #[test]
    fn bins_and_examples_flags_take_every_one_of_their_kind() {
        let ws = ws();
        // Alone: the package around the working directory, as cargo does.
        let bins = Selection {
            all_bins: true,
            ..Selection::default()
        };
        assert_eq!(
            select(&ws, bins.clone(), "api/src").unwrap(),
            [bin_id("api", "api"), bin_id("api", "client")]
        );
        let both = Selection {
            packages: vec!["api".into()],
            all_bins: true,
            all_examples: true,
            ..Selection::default()
        };
        assert_eq!(
            select(&ws, both, ".").unwrap(),
            [
                bin_id("api", "api"),
                bin_id("api", "client"),
                example_id("api", "demo")
            ]
        );
        let none = Selection {
            packages: vec!["worker".into()],
            all_examples: true,
            ..Selection::default()
        };
        let err = error(select(&ws, none, "."));
        assert!(
            err.contains("--examples: no such target in package(s) `worker`"),
            "{err}"
        );
    }

    #[test]
    fn workspace_and_exclude() {
        let ws = ws();
        let exclude_alone = Selection {
            exclude: vec!["api".into()],
            ..Selection::default()
        };
        assert!(error(select(&ws, exclude_alone, "."))
            .contains("--exclude can only be used together with --workspace"));
        let all_but = Selection {
            workspace: true,
            exclude: vec!["api".into(), "t*".into()],
            ..Selection::default()
        };
        assert_eq!(
            select(&ws, all_but, ".").unwrap(),
            [bin_id("worker", "worker")]
        );
        let all = Selection {
            workspace: true,
            ..Selection::default()
        };
        assert_eq!(select(&ws, all, "core").unwrap().len(), 5);
        let bad = Selection {
            workspace: true,
            exclude: vec!["nope".into()],
            ..Selection::default()
        };
        assert!(error(select(&ws, bad, ".")).contains("excluded package `nope` not found"));
    }

    #[test]
    fn edit_distance_counts_swaps_once() {
        assert_eq!(edit_distance("worker", "wroker"), 1);
        assert_eq!(edit_distance("api", "apo"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(closest(&["api".into(), "worker".into()], "x"), None);
    }
}
