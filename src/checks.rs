//! `cargo hot test`, `cargo hot check` and `cargo hot clippy`: on each change, run cargo's
//! tests or lints for the packages the change touches, and nothing else.
//!
//! A loop of its own beside [`crate::engine`], with the same parts: the [`Watcher`] settles
//! changes, [`Workspace::affected_packages`] says which members' tests they reach (dev edges
//! included), cargo runs in its own process group with its output passed through line by
//! line, and a short summary follows each round. A change during a round cancels it and the
//! next round covers both.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use crossbeam_channel::{never, select};

use crate::cli::{CheckArgs, ClippyArgs, TestArgs, WatchArgs};
use crate::config::{CargoOptions, Env, OutputConfig};
use crate::engine::{watch_spec, BUILD_CANCEL_GRACE};
use crate::process::{self, Io, ProcEvent, ProcKey, Reaper, Signal, Spawn, Stream};
use crate::watcher::{WatchMsg, Watcher};
use crate::workspace::{self, PackageChanges};

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
}

/// Everything a `cargo hot test|check|clippy` session needs, resolved.
#[derive(Debug, Clone)]
pub struct Options {
    pub tool: Tool,
    pub cargo: CargoOptions,
    pub debounce: Duration,
    pub poll: Option<Duration>,
    pub ignore: Vec<String>,
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
        let color = OutputConfig::resolve(&Default::default(), env)?.color;
        Ok(Options {
            tool,
            cargo: CargoOptions::resolve(&watch.cargo, 0, color, env),
            debounce: watch.debounce,
            poll: watch.poll,
            ignore: watch.ignore.clone(),
            postpone: watch.postpone,
            runner_args,
            cwd: cwd.to_path_buf(),
        })
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
            }
            args.extend(common);
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
}

impl Summary {
    /// Reads one line of cargo's or the test runner's output (colour codes stripped).
    pub fn read(&mut self, line: &str) {
        let line = strip_ansi(line);
        let text = line.trim();
        let libtest = !self.nextest;
        if let Some(rest) = text.strip_prefix("test result: ").filter(|_| libtest) {
            // libtest: `test result: FAILED. 3 passed; 1 failed; 0 ignored; …`
            for part in rest.split(['.', ';']) {
                let mut words = part.split_whitespace();
                if let (Some(n), Some(what)) = (words.next(), words.next()) {
                    if let Ok(n) = n.parse::<usize>() {
                        match what {
                            "passed" => self.passed += n,
                            "failed" => self.failed += n,
                            _ => {}
                        }
                    }
                }
            }
        } else if let Some(name) = text
            .strip_prefix("test ")
            .and_then(|t| t.strip_suffix(" ... FAILED"))
            .filter(|_| libtest)
        {
            self.failure(name);
        } else if let Some(rest) = text.strip_prefix("PASS [") {
            // nextest: `PASS [   0.004s] core tests::adds`
            if rest.contains(']') {
                self.passed += 1;
            }
        } else if let Some(rest) = text.strip_prefix("FAIL [") {
            if let Some((_, name)) = rest.split_once("] ") {
                let before = self.failures.len();
                self.failure(without_counter(name.trim()));
                if self.failures.len() > before {
                    self.failed += 1;
                }
            }
        } else if text.starts_with("error[") || text.starts_with("error:") {
            // cargo's own closing lines repeat what the compiler already said.
            if !text.starts_with("error: could not compile")
                && !text.starts_with("error: aborting")
                && !text.starts_with("error: test failed")
                && !text.starts_with("error: build failed")
            {
                self.errors += 1;
            }
        } else if text.starts_with("warning:")
            && !text.contains(" generated ")
            && !text.starts_with("warning: build failed")
        {
            self.warnings += 1;
        }
    }

    fn failure(&mut self, name: &str) {
        if !self.failures.iter().any(|f| f == name) {
            self.failures.push(name.to_string());
        }
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
fn plan_packages(plan: &PackageChanges) -> Vec<String> {
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

fn union(into: &mut PackageChanges, other: PackageChanges) {
    into.packages.extend(other.packages);
    for (package, tests) in other.test_targets {
        into.test_targets.entry(package).or_default().extend(tests);
    }
    let whole = &into.packages;
    into.test_targets
        .retain(|package, _| !whole.contains(package));
}

/// One round in progress: the cargo calls still to run and what they printed.
struct Round {
    plan: PackageChanges,
    queue: VecDeque<Vec<OsString>>,
    pid: u32,
    key: ProcKey,
    ok: bool,
    summary: Summary,
    cancel_deadline: Option<Instant>,
}

/// Runs the session until a signal stops it. Returns the exit code.
pub fn run(options: Options) -> Result<i32> {
    if options.tool == (Tool::Test { nextest: true }) {
        let installed = std::process::Command::new(&options.cargo.program)
            .args(["nextest", "--version"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        if !installed {
            bail!("--nextest needs cargo-nextest, which is not installed: `cargo install cargo-nextest --locked`");
        }
    }
    let request = options.cargo.metadata_request(&options.cwd);
    let mut workspace = workspace::load(&request)?;
    let (signal_tx, signals) = crossbeam_channel::unbounded();
    let _signals = crate::engine::forward_signals(signal_tx)?;
    let (proc_tx, procs) = crossbeam_channel::unbounded();
    let (watch_tx, watch) = crossbeam_channel::unbounded();
    let reaper = Reaper::start().context("failed to start the process reaper")?;
    let watcher = Watcher::start(
        watch_spec(&workspace, &options.ignore, options.poll),
        watch_tx,
    )
    .context("failed to start watching files")?;
    eprintln!(
        "Watching {}: {}each change runs `cargo {}` for the packages it affects",
        workspace.root().display(),
        if options.postpone {
            ""
        } else {
            "a first round for every member, then "
        },
        match options.tool {
            Tool::Test { nextest: true } => "nextest run",
            Tool::Test { nextest: false } => "test",
            Tool::Check => "check",
            Tool::Clippy => "clippy",
        }
    );

    let mut pending: Vec<PathBuf> = Vec::new();
    let mut deadline: Option<Instant> = None;
    let mut next: Option<PackageChanges> = None;
    let mut quitting = false;
    let mut next_key: ProcKey = 0;
    // Where things stand before the first edit, as cargo-watch and bacon start.
    let mut round: Option<Round> = if options.postpone {
        None
    } else {
        let everything = workspace.every_member();
        start_round(&options, everything, &proc_tx, &reaper, &mut next_key)
    };
    loop {
        let wake = deadline
            .into_iter()
            .chain(round.as_ref().and_then(|r| r.cancel_deadline))
            .min();
        let timer = wake.map_or_else(never, crossbeam_channel::at);
        select! {
            recv(signals) -> _ => {
                match &round {
                    Some(r) if !quitting => {
                        quitting = true;
                        let _ = process::signal_group(r.pid, Signal::INT);
                    }
                    Some(r) => {
                        let _ = process::signal_group(r.pid, Signal::KILL);
                    }
                    None => return Ok(0),
                }
            }
            recv(watch) -> msg => match msg.context("the file watcher stopped")? {
                WatchMsg::Changes(changes) => {
                    pending.extend(changes.into_iter().map(|c| c.path));
                    deadline = Some(Instant::now() + options.debounce);
                }
                WatchMsg::Warning(message) | WatchMsg::FellBackToPolling { reason: message } => {
                    eprintln!("warning: {message}");
                }
            },
            recv(procs) -> event => match event.context("process event channel closed")? {
                ProcEvent::Output { stream, line, .. } => {
                    let text = String::from_utf8_lossy(&line);
                    match stream {
                        Stream::Stdout => println!("{text}"),
                        Stream::Stderr => eprintln!("{text}"),
                    }
                    if let Some(r) = &mut round {
                        r.summary.read(&text);
                    }
                }
                ProcEvent::Exited { key, status } => {
                    let Some(mut current) = round.take() else { continue };
                    if current.key != key {
                        round = Some(current);
                        continue;
                    }
                    reaper.untrack(current.pid);
                    let _ = process::signal_group(current.pid, Signal::KILL);
                    if quitting {
                        return Ok(0);
                    }
                    if current.cancel_deadline.is_some() {
                        let plan = next.take().unwrap_or_default();
                        round = start_round(&options, plan, &proc_tx, &reaper, &mut next_key);
                        continue;
                    }
                    current.ok &= status.code == Some(0);
                    if let Some(args) = current.queue.pop_front() {
                        match spawn_cargo(&options, args, &proc_tx, &reaper, &mut next_key) {
                            Ok((pid, key)) => {
                                current.pid = pid;
                                current.key = key;
                                round = Some(current);
                            }
                            Err(error) => eprintln!("error: {error:#}"),
                        }
                        continue;
                    }
                    let line = current.summary.render(
                        options.tool,
                        &plan_packages(&current.plan),
                        current.ok,
                    );
                    // The runner's stdout first: the summary comes after the whole output.
                    let _ = std::io::Write::flush(&mut std::io::stdout());
                    eprintln!("{line}");
                }
            },
            recv(timer) -> _ => {}
        }
        let now = Instant::now();
        if let Some(r) = &mut round {
            if r.cancel_deadline.is_some_and(|d| d <= now) {
                r.cancel_deadline = None;
                let _ = process::signal_group(r.pid, Signal::KILL);
            }
        }
        if quitting || deadline.is_none_or(|d| d > now) {
            continue;
        }
        deadline = None;
        let paths = std::mem::take(&mut pending);
        let mut plan = workspace.affected_packages(&paths);
        if plan.reload {
            match workspace::load(&request) {
                Ok(reloaded) => {
                    workspace = reloaded;
                    if let Err(error) =
                        watcher.update(watch_spec(&workspace, &options.ignore, options.poll))
                    {
                        eprintln!("warning: failed to update the watched directories: {error:#}");
                    }
                    plan = workspace.affected_packages(&paths);
                }
                Err(error) => {
                    eprintln!("error: {error:#}\nthe previous workspace graph stays in force");
                }
            }
        }
        if plan.packages.is_empty() && plan.test_targets.is_empty() {
            continue;
        }
        match &mut round {
            Some(current) => {
                let mut merged = next.take().unwrap_or_default();
                union(&mut merged, current.plan.clone());
                union(&mut merged, plan);
                next = Some(merged);
                if current.cancel_deadline.is_none() {
                    eprintln!("A new change: cancelling this round, the next one covers both");
                    current.cancel_deadline = Some(now + BUILD_CANCEL_GRACE);
                    let _ = process::signal_group(current.pid, Signal::INT);
                }
            }
            None => round = start_round(&options, plan, &proc_tx, &reaper, &mut next_key),
        }
    }
}

fn start_round(
    options: &Options,
    plan: PackageChanges,
    tx: &crossbeam_channel::Sender<ProcEvent>,
    reaper: &Reaper,
    next_key: &mut ProcKey,
) -> Option<Round> {
    let mut queue: VecDeque<Vec<OsString>> = commands(options, &plan).into();
    let first = queue.pop_front()?;
    match spawn_cargo(options, first, tx, reaper, next_key) {
        Ok((pid, key)) => Some(Round {
            plan,
            queue,
            pid,
            key,
            ok: true,
            summary: Summary {
                nextest: options.tool == (Tool::Test { nextest: true }),
                ..Summary::default()
            },
            cancel_deadline: None,
        }),
        Err(error) => {
            eprintln!("error: {error:#}");
            None
        }
    }
}

fn spawn_cargo(
    options: &Options,
    args: Vec<OsString>,
    tx: &crossbeam_channel::Sender<ProcEvent>,
    reaper: &Reaper,
    next_key: &mut ProcKey,
) -> Result<(u32, ProcKey)> {
    *next_key += 1;
    let key = *next_key;
    let mut spawn = Spawn::new(&options.cargo.program);
    spawn.args = args;
    spawn.cwd = Some(options.cwd.clone());
    spawn.stdin = Io::Null;
    spawn.stdout = Io::Lines;
    spawn.stderr = Io::Lines;
    spawn.own_group = true;
    let line = spawn.command_line();
    eprintln!("Running {line}");
    let child = process::spawn(&spawn, key, tx).with_context(|| format!("failed to run {line}"))?;
    reaper.track(child.pid);
    Ok((child.pid, key))
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
            debounce: Duration::from_millis(50),
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
                "test -p api -p web --no-fail-fast --profile ci --color never -- --nocapture",
                "test -p core --test smoke --no-fail-fast --profile ci --color never -- --nocapture",
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
    }

    #[test]
    fn lint_commands_cover_whole_packages() {
        let got = strings(commands(
            &options(Tool::Clippy, &["-D", "warnings"]),
            &plan(),
        ));
        assert_eq!(
            got,
            ["clippy -p api -p web -p core --all-targets --profile ci --color never -- -D warnings"]
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

    #[test]
    fn lint_summary() {
        let mut summary = Summary::default();
        for line in [
            "warning: unused variable: `x`",
            "error[E0308]: mismatched types",
            "warning: `web` (lib) generated 1 warning",
            "error: could not compile `web` (lib) due to 1 previous error",
        ] {
            summary.read(line);
        }
        assert_eq!((summary.errors, summary.warnings), (1, 1));
        assert_eq!(
            summary.render(Tool::Clippy, &["web".into()], false),
            "FAILED: linted web: 1 errors, 1 warnings"
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
