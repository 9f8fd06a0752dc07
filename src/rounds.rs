//! `cargo hot test`, `cargo hot check` and `cargo hot clippy`: what a round runs and what its
//! output says.
//!
//! A round is the second workload of the engine ([`crate::engine::rounds`]): on each change,
//! cargo's tests or lints run for the packages the change touches
//! ([`Workspace::affected_packages`], dev edges included), and nothing else. This module is
//! the pure part: the cargo command lines ([`commands`]) and the reading of their output
//! ([`Summary`]): check and clippy diagnostics are counted from cargo's JSON messages, test
//! results from libtest's or nextest's lines.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Result};
use cargo_metadata::Message;

use crate::cli::{CheckArgs, ClippyArgs, TestArgs, WatchArgs};
use crate::config::{CargoOptions, Debounce, Env, OutputConfig};
use crate::event::PackageOutcome;
use crate::workspace::{PackageChanges, Workspace};

/// Which cargo command a round runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Test { nextest: bool },
    Check,
    Clippy,
}

impl Tool {
    fn verb(self) -> &'static str {
        match self {
            Tool::Test { .. } => "tested",
            Tool::Check => "checked",
            Tool::Clippy => "linted",
        }
    }

    /// The name in events: `test`, `nextest`, `check`, `clippy`.
    pub fn name(self) -> &'static str {
        match self {
            Tool::Test { nextest: true } => "nextest",
            Tool::Test { nextest: false } => "test",
            Tool::Check => "check",
            Tool::Clippy => "clippy",
        }
    }
}

/// Which members a session covers: `-p`, or `--workspace` minus `--exclude` (the default:
/// every member).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Members {
    pub packages: Vec<String>,
    pub exclude: Vec<String>,
}

impl Members {
    /// Keeps, of `plan`, only the selected members.
    pub fn filter(&self, mut plan: PackageChanges) -> PackageChanges {
        let keep = |name: &String| {
            (self.packages.is_empty() || self.packages.contains(name))
                && !self.exclude.contains(name)
        };
        plan.packages.retain(|p| keep(p));
        plan.test_targets.retain(|p, _| keep(p));
        plan
    }

    /// Every name given must be a member of `workspace`.
    pub fn check(&self, workspace: &Workspace) -> Result<()> {
        let members: BTreeSet<String> = workspace.every_member().packages;
        for name in self.packages.iter().chain(&self.exclude) {
            if !members.contains(name) {
                let list: Vec<&str> = members.iter().map(String::as_str).collect();
                bail!(
                    "`{name}` is not a member of the workspace at {}; members: {}",
                    workspace.root().display(),
                    list.join(", ")
                );
            }
        }
        Ok(())
    }
}

/// Everything a `cargo hot test|check|clippy` session needs, resolved.
#[derive(Debug, Clone)]
pub struct Options {
    pub tool: Tool,
    pub cargo: CargoOptions,
    pub members: Members,
    pub output: OutputConfig,
    /// The flags' values; the configuration fills in what they leave out.
    pub debounce: Option<Duration>,
    pub poll: Option<Duration>,
    pub ignore: Vec<String>,
    pub config_file: Option<PathBuf>,
    /// Wait for the first change instead of a first round over every member.
    pub postpone: bool,
    /// After `--`: to the test runner or to clippy.
    pub runner_args: Vec<OsString>,
    pub cwd: PathBuf,
}

impl Options {
    pub fn test(args: &TestArgs, env: &Env, cwd: &Path) -> Result<Options> {
        let tool = Tool::Test {
            nextest: args.nextest,
        };
        Options::resolve(tool, &args.watch, args.args.clone(), env, cwd)
    }

    pub fn check(args: &CheckArgs, env: &Env, cwd: &Path) -> Result<Options> {
        Options::resolve(Tool::Check, &args.watch, Vec::new(), env, cwd)
    }

    pub fn clippy(args: &ClippyArgs, env: &Env, cwd: &Path) -> Result<Options> {
        Options::resolve(Tool::Clippy, &args.watch, args.args.clone(), env, cwd)
    }

    fn resolve(
        tool: Tool,
        watch: &WatchArgs,
        runner_args: Vec<OsString>,
        env: &Env,
        cwd: &Path,
    ) -> Result<Options> {
        let mut output = OutputConfig::resolve(&watch.output, env)?;
        output.target_keys = false;
        Ok(Options {
            tool,
            cargo: CargoOptions::resolve(&watch.cargo, watch.output.verbose, output.color, env),
            members: Members {
                packages: watch.selection.packages.clone(),
                exclude: watch.selection.exclude.clone(),
            },
            output,
            debounce: watch.debounce,
            poll: watch.poll,
            ignore: watch.ignore.clone(),
            config_file: watch
                .hot_config
                .as_ref()
                .map(|f| crate::workspace::normalize(&cwd.join(f))),
            postpone: watch.postpone,
            runner_args,
            cwd: cwd.to_path_buf(),
        })
    }

    /// The quiet period: the flag, else the configuration's, else the default.
    pub fn debounce_with(&self, configured: Option<Duration>) -> Debounce {
        Debounce::from_setting(self.debounce.or(configured))
    }
}

/// The cargo invocations for one round: every whole package in one, and one for each package
/// of which only some integration tests changed.
pub fn commands(options: &Options, plan: &PackageChanges) -> Vec<Vec<OsString>> {
    let mut groups: Vec<(Vec<&str>, Vec<&str>)> = Vec::new();
    match options.tool {
        Tool::Test { .. } => {
            if !plan.packages.is_empty() {
                groups.push((plan.packages.iter().map(String::as_str).collect(), vec![]));
            }
            for (package, tests) in &plan.test_targets {
                groups.push((vec![package], tests.iter().map(String::as_str).collect()));
            }
        }
        // Lints cover every target of a package: no narrower unit than the package.
        Tool::Check | Tool::Clippy => {
            let all: Vec<&str> = plan
                .packages
                .iter()
                .chain(plan.test_targets.keys())
                .map(String::as_str)
                .collect();
            if !all.is_empty() {
                groups.push((all, vec![]));
            }
        }
    }
    groups
        .into_iter()
        .map(|(packages, tests)| {
            let mut args: Vec<OsString> = match options.tool {
                Tool::Test { nextest: true } => vec!["nextest".into(), "run".into()],
                Tool::Test { nextest: false } => vec!["test".into()],
                Tool::Check => vec!["check".into()],
                Tool::Clippy => vec!["clippy".into()],
            };
            for package in packages {
                args.push("-p".into());
                args.push(package.into());
            }
            for test in tests {
                args.push("--test".into());
                args.push(test.into());
            }
            match options.tool {
                Tool::Check | Tool::Clippy => args.push("--all-targets".into()),
                // Every affected package is tested even when an early one fails.
                Tool::Test { .. } => args.push("--no-fail-fast".into()),
            }
            let mut common = options.cargo.common_args();
            if matches!(options.tool, Tool::Test { nextest: true }) {
                // nextest has profiles of its own; cargo's is `--cargo-profile` there.
                if let Some(at) = common.iter().position(|a| a == "--profile") {
                    common[at] = "--cargo-profile".into();
                }
                // nextest's -j/--jobs is its test threads; cargo's build jobs are `--build-jobs`.
                if let Some(at) = common.iter().position(|a| a == "--jobs") {
                    common[at] = "--build-jobs".into();
                }
            }
            args.extend(common);
            // Diagnostics as JSON, so they are counted per package, not guessed from text
            // (nextest's flag of that name is about its own output).
            if options.tool != (Tool::Test { nextest: true }) {
                args.push("--message-format".into());
                args.push(
                    if options.cargo.color {
                        "json-diagnostic-rendered-ansi"
                    } else {
                        "json"
                    }
                    .into(),
                );
            }
            args.push("--color".into());
            args.push(
                if options.cargo.color {
                    "always"
                } else {
                    "never"
                }
                .into(),
            );
            if !options.runner_args.is_empty() {
                args.push("--".into());
                args.extend(options.runner_args.iter().cloned());
            }
            args
        })
        .collect()
}

/// What a round's output said, read line by line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Summary {
    /// nextest output: its own PASS/FAIL lines count, and the libtest output it replays for
    /// a failed test must not count twice.
    pub nextest: bool,
    pub passed: usize,
    pub failed: usize,
    /// Failed tests by name, in order, without repeats.
    pub failures: Vec<String>,
    pub errors: usize,
    pub warnings: usize,
    /// The same counts per package.
    pub packages: BTreeMap<String, PackageOutcome>,
    /// Package id → name, to attribute cargo's messages.
    pub package_names: HashMap<String, String>,
    /// Test executables → their package, from cargo's artifact messages.
    executables: HashMap<String, String>,
    /// The package whose tests run now (cargo's `Running …` / `Doc-tests …` lines).
    current: Option<String>,
    /// Diagnostics seen, per package: `--all-targets` compiles a lib twice (lib and lib
    /// test), and cargo shows (and counts) a repeated one once.
    seen: std::collections::HashSet<(String, String)>,
}

/// What to show of a line of cargo's stdout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shown {
    /// Nothing (a JSON message with nothing for people).
    Nothing,
    /// A rendered diagnostic, shown like cargo's stderr.
    Diagnostic(String),
    /// The test runner's own output.
    Runner,
}

impl Summary {
    pub fn new(nextest: bool, package_names: HashMap<String, String>) -> Summary {
        Summary {
            nextest,
            package_names,
            ..Summary::default()
        }
    }

    /// Reads one line of cargo's stdout: a JSON message, or the test runner's own output.
    pub fn read_stdout(&mut self, line: &[u8]) -> Shown {
        if line.first() == Some(&b'{') {
            if let Ok(message) = serde_json::from_slice::<Message>(line) {
                return self.message(message);
            }
        }
        self.read(&String::from_utf8_lossy(line));
        Shown::Runner
    }

    /// Reads one line of cargo's stderr (its status lines say whose tests run next).
    pub fn read_stderr(&mut self, line: &[u8]) {
        let text = strip_ansi(&String::from_utf8_lossy(line));
        let text = text.trim();
        if let Some(rest) = text.strip_prefix("Running ") {
            // `Running unittests src/lib.rs (target/debug/deps/core-0123abcd)`
            let path = rest
                .rsplit_once('(')
                .and_then(|(_, p)| p.strip_suffix(')'))
                .unwrap_or(rest);
            let file = Path::new(path).file_name().map(|f| f.to_string_lossy());
            self.current = file.and_then(|f| {
                self.executables
                    .iter()
                    .find(|(exe, _)| {
                        Path::new(exe).file_name().map(|n| n.to_string_lossy()) == Some(f.clone())
                    })
                    .map(|(_, package)| package.clone())
            });
        } else if let Some(krate) = text.strip_prefix("Doc-tests ") {
            let krate = krate.trim();
            self.current = self
                .package_names
                .values()
                .find(|name| name.replace('-', "_") == krate)
                .cloned();
        }
    }

    fn message(&mut self, message: Message) -> Shown {
        match message {
            Message::CompilerMessage(msg) => {
                let package = self.package_of(&msg.package_id.repr);
                let text = msg.message.message.as_str();
                // rustc's closing lines repeat what it already said.
                let summary_line = text.starts_with("aborting due to")
                    || (text.ends_with(" emitted") && text.contains("warning"));
                let rendered = msg
                    .message
                    .rendered
                    .clone()
                    .unwrap_or_else(|| text.to_string());
                if !self.seen.insert((package.clone(), rendered)) {
                    return Shown::Nothing;
                }
                if !summary_line {
                    let tally =
                        self.packages
                            .entry(package.clone())
                            .or_insert_with(|| PackageOutcome {
                                package: package.clone(),
                                ..PackageOutcome::default()
                            });
                    match msg.message.level {
                        cargo_metadata::diagnostic::DiagnosticLevel::Error
                        | cargo_metadata::diagnostic::DiagnosticLevel::Ice => {
                            self.errors += 1;
                            tally.errors += 1;
                        }
                        cargo_metadata::diagnostic::DiagnosticLevel::Warning => {
                            self.warnings += 1;
                            tally.warnings += 1;
                        }
                        _ => {}
                    }
                }
                match msg.message.rendered {
                    Some(rendered) => Shown::Diagnostic(rendered.trim_end().to_string()),
                    None => Shown::Nothing,
                }
            }
            Message::CompilerArtifact(artifact) => {
                if let Some(exe) = artifact.executable {
                    let package = self.package_of(&artifact.package_id.repr);
                    self.executables.insert(exe.to_string(), package);
                }
                Shown::Nothing
            }
            Message::TextLine(_) => Shown::Runner,
            _ => Shown::Nothing,
        }
    }

    fn package_of(&self, id: &str) -> String {
        self.package_names
            .get(id)
            .cloned()
            .unwrap_or_else(|| crate::build::name_from_package_id(id))
    }

    fn tally(&mut self, package: Option<String>) -> Option<&mut PackageOutcome> {
        let package = package?;
        Some(
            self.packages
                .entry(package.clone())
                .or_insert_with(|| PackageOutcome {
                    package,
                    ..PackageOutcome::default()
                }),
        )
    }

    /// Reads one line of the test runner's output (colour codes stripped).
    pub fn read(&mut self, line: &str) {
        let line = strip_ansi(line);
        let text = line.trim();
        let libtest = !self.nextest;
        if let Some(rest) = text.strip_prefix("test result: ").filter(|_| libtest) {
            // libtest: `test result: FAILED. 3 passed; 1 failed; 0 ignored; …`
            let (mut passed, mut failed) = (0, 0);
            for part in rest.split(['.', ';']) {
                let mut words = part.split_whitespace();
                if let (Some(n), Some(what)) = (words.next(), words.next()) {
                    if let Ok(n) = n.parse::<usize>() {
                        match what {
                            "passed" => passed += n,
                            "failed" => failed += n,
                            _ => {}
                        }
                    }
                }
            }
            self.passed += passed;
            self.failed += failed;
            if let Some(tally) = self.tally(self.current.clone()) {
                tally.passed += passed;
                tally.failed += failed;
            }
        } else if let Some(name) = text
            .strip_prefix("test ")
            .and_then(|t| t.strip_suffix(" ... FAILED"))
            .filter(|_| libtest)
        {
            self.failure(name);
        } else if let Some(rest) = text.strip_prefix("PASS [") {
            // nextest: `PASS [   0.004s] core tests::adds`
            if let Some((_, name)) = rest.split_once("] ") {
                self.passed += 1;
                let package = nextest_package(without_counter(name.trim()));
                if let Some(tally) = self.tally(Some(package)) {
                    tally.passed += 1;
                }
            }
        } else if let Some(rest) = text.strip_prefix("FAIL [") {
            if let Some((_, name)) = rest.split_once("] ") {
                let name = without_counter(name.trim());
                let before = self.failures.len();
                self.failure(name);
                if self.failures.len() > before {
                    self.failed += 1;
                    if let Some(tally) = self.tally(Some(nextest_package(name))) {
                        tally.failed += 1;
                    }
                }
            }
        }
    }

    fn failure(&mut self, name: &str) {
        if !self.failures.iter().any(|f| f == name) {
            self.failures.push(name.to_string());
        }
    }

    /// Per package, in name order, each `packages` member included (a package with nothing
    /// to report passed); `ok` is false for a package with a failed test or an error.
    pub fn outcomes(&self, packages: &[String], round_ok: bool) -> Vec<PackageOutcome> {
        let mut out: BTreeMap<String, PackageOutcome> = packages
            .iter()
            .map(|p| {
                (
                    p.clone(),
                    PackageOutcome {
                        package: p.clone(),
                        ..PackageOutcome::default()
                    },
                )
            })
            .collect();
        for (name, tally) in &self.packages {
            if out.contains_key(name) {
                out.insert(name.clone(), tally.clone());
            }
        }
        let attributed = out.values().any(|t| t.failed + t.errors > 0);
        for tally in out.values_mut() {
            tally.ok = tally.failed == 0 && tally.errors == 0;
            // cargo failed and nothing says where: no package can be called good.
            if !round_ok && !attributed {
                tally.ok = false;
            }
        }
        out.into_values().collect()
    }

    /// The line printed after a round.
    pub fn render(&self, tool: Tool, packages: &[String], ok: bool) -> String {
        let who = packages.join(", ");
        match tool {
            Tool::Test { .. } => {
                let status = if ok && self.failed == 0 {
                    "ok"
                } else {
                    "FAILED"
                };
                let mut line = format!(
                    "{status}: tested {who}: {} passed, {} failed",
                    self.passed, self.failed
                );
                if !self.failures.is_empty() {
                    line.push_str(&format!(": {}", self.failures.join(", ")));
                } else if !ok {
                    line.push_str(" (cargo failed before or after the tests: see above)");
                }
                line
            }
            Tool::Check | Tool::Clippy => format!(
                "{}: {} {who}: {} errors, {} warnings",
                if ok { "ok" } else { "FAILED" },
                tool.verb(),
                self.errors,
                self.warnings
            ),
        }
    }
}

/// nextest names a test `core tests::adds` or `core::smoke tests::adds`: the package first.
fn nextest_package(name: &str) -> String {
    let binary = name.split_whitespace().next().unwrap_or(name);
    binary.split("::").next().unwrap_or(binary).to_string()
}

/// nextest's `(2/7) core tests::x` without the `(2/7) `.
fn without_counter(name: &str) -> &str {
    match name.split_once(") ") {
        Some((counter, rest))
            if counter.starts_with('(')
                && counter[1..].chars().all(|c| c.is_ascii_digit() || c == '/') =>
        {
            rest
        }
        _ => name,
    }
}

fn strip_ansi(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' && chars.peek() == Some(&'[') {
            chars.next();
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The packages a plan names, for the summary.
pub fn plan_packages(plan: &PackageChanges) -> Vec<String> {
    let mut names: Vec<String> = plan
        .packages
        .iter()
        .chain(plan.test_targets.keys())
        .cloned()
        .collect();
    names.sort();
    names.dedup();
    names
}

pub fn union(into: &mut PackageChanges, other: PackageChanges) {
    into.packages.extend(other.packages);
    for (package, tests) in other.test_targets {
        into.test_targets.entry(package).or_default().extend(tests);
    }
    let whole = &into.packages;
    into.test_targets
        .retain(|package, _| !whole.contains(package));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(tool: Tool, runner_args: &[&str]) -> Options {
        Options {
            tool,
            cargo: CargoOptions {
                program: "cargo".into(),
                profile: Some("ci".into()),
                ..CargoOptions::default()
            },
            members: Members::default(),
            output: OutputConfig {
                format: crate::config::OutputFormat::Human,
                json_output: false,
                verbosity: crate::config::Verbosity::Normal,
                color: false,
                keys: false,
                alerts: Default::default(),
                target_keys: true,
            },
            config_file: None,
            debounce: None,
            poll: None,
            ignore: Vec::new(),
            postpone: false,
            runner_args: runner_args.iter().map(OsString::from).collect(),
            cwd: "/ws".into(),
        }
    }

    fn plan() -> PackageChanges {
        PackageChanges {
            packages: ["api".to_string(), "web".to_string()].into(),
            test_targets: [("core".to_string(), ["smoke".to_string()].into())].into(),
            ..PackageChanges::default()
        }
    }

    fn strings(commands: Vec<Vec<OsString>>) -> Vec<String> {
        commands
            .iter()
            .map(|c| {
                c.iter()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    }

    #[test]
    fn test_commands_split_whole_packages_from_single_tests() {
        let got = strings(commands(
            &options(Tool::Test { nextest: false }, &["--nocapture"]),
            &plan(),
        ));
        assert_eq!(
            got,
            [
                "test -p api -p web --no-fail-fast --profile ci --message-format json --color never -- --nocapture",
                "test -p core --test smoke --no-fail-fast --profile ci --message-format json --color never -- --nocapture",
            ]
        );
        let got = strings(commands(
            &options(Tool::Test { nextest: true }, &[]),
            &plan(),
        ));
        assert_eq!(
            got[0],
            "nextest run -p api -p web --no-fail-fast --cargo-profile ci --color never"
        );
        let mut with_jobs = options(Tool::Test { nextest: true }, &[]);
        with_jobs.cargo.jobs = Some("2".into());
        let got = strings(commands(&with_jobs, &plan()));
        assert!(got[0].contains(" --build-jobs 2 "), "{}", got[0]);
        let mut with_jobs = options(Tool::Test { nextest: false }, &[]);
        with_jobs.cargo.jobs = Some("2".into());
        let got = strings(commands(&with_jobs, &plan()));
        assert!(got[0].contains(" --jobs 2 "), "{}", got[0]);
    }

    #[test]
    fn lint_commands_cover_whole_packages() {
        let got = strings(commands(
            &options(Tool::Clippy, &["-D", "warnings"]),
            &plan(),
        ));
        assert_eq!(
            got,
            ["clippy -p api -p web -p core --all-targets --profile ci --message-format json --color never -- -D warnings"]
        );
        let got = strings(commands(
            &options(Tool::Check, &[]),
            &PackageChanges::default(),
        ));
        assert!(got.is_empty());
    }

    #[test]
    fn libtest_summary() {
        let mut summary = Summary::default();
        for line in [
            "running 3 tests",
            "test tests::adds ... ok",
            "test tests::breaks ... FAILED",
            "\u{1b}[1mtest result: \u{1b}[0mFAILED. 2 passed; 1 failed; 0 ignored; 0 measured; 0 filtered out",
            "test result: ok. 4 passed; 0 failed; 1 ignored; 0 measured; 0 filtered out; finished in 0.01s",
            "failures:",
            "    tests::breaks",
            "error: test failed, to rerun pass `-p core --lib`",
        ] {
            summary.read(line);
        }
        assert_eq!(summary.passed, 6);
        assert_eq!(summary.failed, 1);
        assert_eq!(summary.failures, ["tests::breaks"]);
        assert_eq!(summary.errors, 0);
        assert_eq!(
            summary.render(
                Tool::Test { nextest: false },
                &["core".into(), "web".into()],
                false
            ),
            "FAILED: tested core, web: 6 passed, 1 failed: tests::breaks"
        );
    }

    #[test]
    fn nextest_summary() {
        let mut summary = Summary {
            nextest: true,
            ..Summary::default()
        };
        for line in [
            "        PASS [   0.004s] (1/2) core tests::adds",
            "        FAIL [   0.005s] (2/2) core tests::breaks",
            // The failed test's own output, replayed: not counted again.
            "    test tests::breaks ... FAILED",
            "    test result: FAILED. 0 passed; 1 failed; 0 ignored; 0 measured; 1 filtered out",
            "     Summary [   0.010s] 2 tests run: 1 passed, 1 failed, 0 skipped",
            "        FAIL [   0.005s] core tests::breaks",
        ] {
            summary.read(line);
        }
        assert_eq!((summary.passed, summary.failed), (1, 1));
        assert_eq!(summary.failures, ["core tests::breaks"]);
    }

    fn diagnostic(package_id: &str, level: &str, message: &str) -> String {
        serde_json::json!({
            "reason": "compiler-message",
            "package_id": package_id,
            "manifest_path": "/ws/web/Cargo.toml",
            "target": {"kind": ["lib"], "crate_types": ["lib"], "name": "web",
                       "src_path": "/ws/web/src/lib.rs", "edition": "2021", "doctest": true,
                       "test": true},
            "message": {"message": message, "code": null, "level": level, "spans": [],
                        "children": [], "rendered": format!("{level}: {message}\n")},
        })
        .to_string()
    }

    #[test]
    fn lint_summary_counts_cargo_json_diagnostics_per_package() {
        let id = "path+file:///ws/web#0.1.0";
        let mut summary = Summary::new(false, [(id.to_string(), "web".to_string())].into());
        let shown =
            summary.read_stdout(diagnostic(id, "warning", "unused variable: `x`").as_bytes());
        assert_eq!(
            shown,
            Shown::Diagnostic("warning: unused variable: `x`".into())
        );
        summary.read_stdout(diagnostic(id, "error", "mismatched types").as_bytes());
        // The same diagnostic again, from the lib's test build: cargo shows it once.
        let again = summary.read_stdout(diagnostic(id, "error", "mismatched types").as_bytes());
        assert_eq!(again, Shown::Nothing);
        // rustc's closing lines are not diagnostics of their own.
        summary.read_stdout(diagnostic(id, "error", "aborting due to 1 previous error").as_bytes());
        summary.read_stdout(diagnostic(id, "warning", "1 warning emitted").as_bytes());
        // Text that merely looks like a diagnostic (a test printing it) counts for nothing.
        assert_eq!(summary.read_stdout(b"error: not from rustc"), Shown::Runner);
        assert_eq!((summary.errors, summary.warnings), (1, 1));
        assert_eq!(
            summary.render(Tool::Clippy, &["web".into()], false),
            "FAILED: linted web: 1 errors, 1 warnings"
        );
        let outcomes = summary.outcomes(&["core".into(), "web".into()], false);
        assert_eq!(outcomes.len(), 2);
        assert!(outcomes[0].ok, "core had nothing wrong");
        assert!(!outcomes[1].ok);
        assert_eq!((outcomes[1].errors, outcomes[1].warnings), (1, 1));
    }

    #[test]
    fn test_results_are_attributed_to_the_package_whose_binary_runs() {
        let id = "path+file:///ws/core#0.1.0";
        let mut summary = Summary::new(false, [(id.to_string(), "core".to_string())].into());
        let artifact = serde_json::json!({
            "reason": "compiler-artifact", "package_id": id, "manifest_path": "/ws/core/Cargo.toml",
            "target": {"kind": ["lib"], "crate_types": ["lib"], "name": "core",
                       "src_path": "/ws/core/src/lib.rs", "edition": "2021", "doctest": true, "test": true},
            "profile": {"opt_level": "0", "debuginfo": 2, "debug_assertions": true,
                        "overflow_checks": true, "test": true},
            "features": [], "filenames": ["/ws/target/debug/deps/core-0123abcd"],
            "executable": "/ws/target/debug/deps/core-0123abcd", "fresh": false,
        });
        summary.read_stdout(artifact.to_string().as_bytes());
        summary.read_stderr(b"     Running unittests src/lib.rs (target/debug/deps/core-0123abcd)");
        summary.read_stdout(b"test result: FAILED. 2 passed; 1 failed; 0 ignored");
        let outcomes = summary.outcomes(&["core".into()], false);
        assert_eq!(
            (outcomes[0].passed, outcomes[0].failed, outcomes[0].ok),
            (2, 1, false)
        );
    }

    #[test]
    fn a_cancelled_round_and_the_new_change_unite() {
        let mut into = PackageChanges {
            test_targets: [("api".to_string(), ["t".to_string()].into())].into(),
            ..PackageChanges::default()
        };
        union(
            &mut into,
            PackageChanges {
                packages: ["api".to_string()].into(),
                ..PackageChanges::default()
            },
        );
        assert_eq!(plan_packages(&into), ["api"]);
        assert!(into.test_targets.is_empty());
    }
}
