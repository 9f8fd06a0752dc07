//! The resolved configuration: what the command line, the environment and the configuration
//! files mean, decided once.
//!
//! [`crate::cli`] holds the raw flags; this module turns them into a [`RunConfig`] (and the
//! smaller [`CargoOptions`] every cargo call shares), so the precedence rules live in one place
//! and everything downstream reads plain values. The files — `[workspace.metadata.hot]`,
//! members' `[package.metadata.hot]` (both from `cargo metadata`) and `--hot-config FILE` — are
//! parsed in `file.rs` and layered in `merge.rs`; [`RunConfig::apply_workspace`] puts the
//! flags on top once the workspace is loaded, and again after each manifest reload:
//! command line > `--hot-config` file > package > workspace > defaults.

mod cargo;
mod file;
pub mod init;
mod merge;
pub use merge::load as load_hot;

pub use cargo::{check_cargo_config, CargoOptions};
pub use file::{TargetLayer, WatchAction, WatchEntry};
pub use merge::{HotConfig, WatchPlan};

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};

use crate::cli::{ColorChoice, OutputArgs, RunArgs, SelectionArgs};
use crate::process::Signal;
use crate::proxy::launch;
use crate::proxy::{Binding, ProxySpec};
use crate::ready::{ReadyCheck, ReadySpec, SOCKET_GRACE};
use crate::sockets::{target_matches, ListenSpec, Sockets};
use crate::supervisor::{Handoff, JobPolicy, StopPolicy};
use crate::ui::alerts::AlertOptions;
use crate::watcher::WatchSpec;
use crate::workspace::{normalize, Selection, TargetId, Workspace};

/// The quiet period when neither `--debounce` nor the configuration sets one.
pub const DEFAULT_DEBOUNCE: Debounce = Debounce {
    quiet: Duration::from_millis(10),
    whole: Duration::from_millis(2),
};
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(5);
pub const DEFAULT_SIGNAL: Signal = Signal::TERM;

/// How long a burst of file events must be quiet before it is built.
///
/// A quiet period exists so that one save (truncate, write, close; or write a temporary file,
/// rename it into place) is one build, not a build that the rest of the save cancels. Where
/// the OS says when a writer is done with a file (inotify's `IN_CLOSE_WRITE` on Linux), the
/// default waits only `whole` once every file of the burst is known whole; elsewhere, or
/// while a file is still open for writing, it waits `quiet`. A `--debounce` set by the user
/// is honoured exactly: both are that value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Debounce {
    /// Quiet needed while a file of the burst may still be being written.
    pub quiet: Duration,
    /// Quiet needed once every file of the burst is known whole.
    pub whole: Duration,
}

impl Debounce {
    /// The user's `--debounce` (or `debounce =`), else the default.
    pub fn from_setting(setting: Option<Duration>) -> Debounce {
        setting.map_or(DEFAULT_DEBOUNCE, |d| Debounce { quiet: d, whole: d })
    }
}

/// Everything `cargo hot run` needs to know, resolved.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub cargo: CargoOptions,
    pub selection: Selection,
    pub debounce: Debounce,
    pub poll: Option<Duration>,
    /// `--no-poll`: never poll, not even automatically.
    pub native_only: bool,
    /// `--watch DIR`: absolute directories watched besides the workspace.
    pub extra_roots: Vec<PathBuf>,
    /// `--ignore` and the files' `ignore` globs, and `action = "ignore"` watch paths.
    pub ignore: Vec<String>,
    /// `--signal`, else the default; a target's `signal` key sits between the two.
    pub stop_signal: Signal,
    pub stop_timeout: Duration,
    /// `--listen`, in order, then the selected targets' `listen` keys: the sockets cargo hot
    /// binds and hands to the targets.
    pub listen: Vec<ListenSpec>,
    /// `--proxy`, then the selected targets' `proxy` keys, each with the target it serves
    /// (resolved by [`RunConfig::apply_workspace`]).
    pub proxy: Vec<Binding>,
    /// `--proxy-wait`: how long a request waits for a ready run.
    pub proxy_wait: Duration,
    /// Inject the live-reload script into proxied pages (`--no-reload`: no).
    pub reload: bool,
    /// `--ready`, in order; a spec naming a target beats one that names none.
    pub ready: Vec<ReadySpec>,
    pub ready_timeout: Duration,
    /// Whether targets handed sockets overlap old and new processes (`--no-overlap`: no).
    pub overlap: bool,
    pub target_args: Vec<OsString>,
    /// The target that gets the terminal's input (`--stdin`).
    pub stdin_target: Option<String>,
    pub output: OutputConfig,
    /// Where we were started: cargo's target selection and the targets' cwd start here.
    pub cwd: PathBuf,
    /// `--hot-config FILE`, absolute.
    pub config_file: Option<PathBuf>,
    /// The configuration files, merged: set by [`RunConfig::apply_workspace`].
    pub hot: HotConfig,
    /// Every env file in use, read: set by [`RunConfig::apply_workspace`].
    env_files: BTreeMap<PathBuf, Vec<(String, String)>>,
    /// What the command line said, kept to re-apply on top of files that changed.
    flags: Flags,
}

/// The flags that configuration keys can also set: `None`/empty when not given.
#[derive(Debug, Clone, Default)]
struct Flags {
    debounce: Option<Duration>,
    poll: Option<Duration>,
    ignore: Vec<String>,
    signal: Option<Signal>,
    stop_timeout: Option<Duration>,
    listen: Vec<ListenSpec>,
    proxy: Vec<ProxySpec>,
    /// `-E KEY=VAL`, in order: beats every other source of a variable.
    env: Vec<(String, String)>,
    /// `--env-file`, absolute: replaces the configuration's top-level `env-file`.
    env_file: Option<PathBuf>,
    /// `-c`.
    clear: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutputConfig {
    pub format: OutputFormat,
    /// With JSON: the targets' output as `output` events too.
    pub json_output: bool,
    pub verbosity: Verbosity,
    pub color: bool,
    /// Single-key commands (`r`, `q`, `c`, `?`): only in the live view, with stdin a
    /// terminal that no target claims.
    pub keys: bool,
    /// `--clear`, `--bell`, `--notify`.
    pub alerts: AlertOptions,
    /// The keys that restart, stop and start one target apply (`run`; not `test|check|clippy`).
    pub target_keys: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// One plain line per event for people: pipes, CI, `--plain`, no colour.
    Human,
    /// A terminal: the same lines, plus a live status area and a build progress bar.
    Live,
    /// Newline-delimited JSON events on stdout, for tools and tests.
    Json,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    Normal,
    Verbose,
}

/// The environment variables we read, gathered so resolution is a pure function.
#[derive(Debug, Clone, Default)]
pub struct Env {
    pub cargo: Option<OsString>,
    pub cargo_term_color: Option<String>,
    pub no_color: bool,
    pub stderr_is_terminal: bool,
    pub stdout_is_terminal: bool,
    pub stdin_is_terminal: bool,
}

impl Env {
    pub fn from_process() -> Env {
        Env {
            cargo: std::env::var_os("CARGO"),
            cargo_term_color: std::env::var("CARGO_TERM_COLOR").ok(),
            // https://no-color.org: present and not empty.
            no_color: std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty()),
            stderr_is_terminal: console::Term::stderr().is_term(),
            stdout_is_terminal: console::Term::stdout().is_term(),
            stdin_is_terminal: std::io::IsTerminal::is_terminal(&std::io::stdin()),
        }
    }
}

impl RunConfig {
    /// Where cargo's "the package in the current directory" rule looks: the directory of
    /// `--manifest-path` when given, as cargo does, else where we were started.
    pub fn selection_dir(&self) -> PathBuf {
        self.cargo.selection_dir(&self.cwd)
    }

    pub fn resolve(args: &RunArgs, env: &Env, cwd: &Path) -> Result<RunConfig> {
        let signal: Option<Signal> = args
            .signal
            .as_deref()
            .map(str::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("invalid value for --signal: {e}"))?;
        let mut output = OutputConfig::resolve(&args.output, env)?;
        if args.stdin_target.is_some() && output.format == OutputFormat::Live {
            // The terminal echoes what the user types to that target, which a redrawn status
            // area would tear, and our key reader would steal its keys: plain lines instead,
            // and a single target writes straight to the terminal, prompts included.
            output.format = OutputFormat::Human;
            output.keys = false;
        }
        let listen = args
            .listen
            .iter()
            .map(|text| ListenSpec::parse(text, cwd))
            .collect::<Result<Vec<_>>>()?;
        let proxy = args
            .proxy
            .iter()
            .map(|text| ProxySpec::parse(text, cwd))
            .collect::<Result<Vec<_>>>()?;
        let ready = args
            .ready
            .iter()
            .map(|text| ReadySpec::parse(text))
            .collect::<Result<Vec<_>>>()?;
        check_cargo_config(&args.cargo.config, cwd)?;
        let extra_roots = args
            .watch
            .iter()
            .map(|dir| {
                let dir = normalize(&cwd.join(dir));
                if !dir.is_dir() {
                    bail!(
                        "--watch {}: not a directory; --watch takes a directory to watch besides the workspace",
                        dir.display()
                    );
                }
                Ok(dir)
            })
            .collect::<Result<Vec<_>>>()?;
        let mut cargo = CargoOptions::resolve(&args.cargo, args.output.verbose, output.color, env);
        cargo.keep_going = args.keep_going;
        Ok(RunConfig {
            cargo,
            selection: selection(&args.selection),
            debounce: Debounce::from_setting(args.debounce),
            poll: args.poll,
            native_only: args.no_poll,
            extra_roots,
            ignore: args.ignore.clone(),
            stop_signal: signal.unwrap_or(DEFAULT_SIGNAL),
            stop_timeout: args.stop_timeout.unwrap_or(DEFAULT_STOP_TIMEOUT),
            listen: listen.clone(),
            proxy: Vec::new(),
            proxy_wait: args.proxy_wait,
            reload: !args.no_reload,
            ready,
            ready_timeout: args.ready_timeout,
            overlap: !args.no_overlap,
            target_args: args.args.clone(),
            stdin_target: args.stdin_target.clone(),
            output,
            cwd: cwd.to_path_buf(),
            config_file: args.hot_config.as_ref().map(|f| normalize(&cwd.join(f))),
            hot: HotConfig::default(),
            flags: Flags {
                debounce: args.debounce,
                poll: args.poll,
                ignore: args.ignore.clone(),
                signal,
                stop_timeout: args.stop_timeout,
                listen,
                proxy,
                env: args.env.clone(),
                env_file: args.env_file.as_ref().map(|f| normalize(&cwd.join(f))),
                clear: args.output.clear,
            },
            env_files: BTreeMap::new(),
        })
    }

    /// Reads the workspace's configuration (and `--hot-config`), puts the flags on top, and
    /// returns the targets to run: the command line's selection, else `run`, else cargo's
    /// default. On error `self` is unchanged, so the last good configuration stays in force.
    pub fn apply_workspace(&mut self, workspace: &Workspace) -> Result<Vec<TargetId>> {
        let hot = merge::load(workspace, self.config_file.as_deref())?;
        let targets = match &hot.run {
            Some(run) if self.selection == Selection::default() => run.clone(),
            _ => workspace.select(&self.selection, &self.selection_dir())?,
        };
        self.debounce = Debounce::from_setting(self.flags.debounce.or(hot.debounce));
        self.poll = if self.native_only {
            None
        } else {
            self.flags.poll.or(hot.poll.flatten())
        };
        self.ignore = watch_ignores(&hot, workspace, &self.flags.ignore);
        for target in &targets {
            if let Some(dir) = hot.targets.get(target).and_then(|t| t.cwd.as_ref()) {
                if !dir.is_dir() {
                    bail!(
                        "the working directory {} configured for {target} (`cwd`) is not a directory: create it or fix the key",
                        dir.display()
                    );
                }
            }
        }
        // A target's own `listen` applies unless a --listen already gives it a socket.
        self.listen = self.flags.listen.clone();
        for target in &targets {
            let from_flags = self.flags.listen.iter().any(|l| l.applies_to(target));
            let configured = hot.targets.get(target).and_then(|t| t.listen.as_ref());
            if let (false, Some(addrs)) = (from_flags, configured) {
                self.listen.extend(addrs.iter().map(|addr| ListenSpec {
                    target: Some(target.qualified()),
                    addr: addr.clone(),
                }));
            }
        }
        // Likewise a target's own `proxy`, unless a --proxy names it.
        let mut proxy = self.flags.proxy.clone();
        for target in &targets {
            let named = |p: &ProxySpec| {
                p.target
                    .as_deref()
                    .is_some_and(|n| target_matches(n, target))
            };
            let from_flags = self.flags.proxy.iter().any(named);
            let configured = hot.targets.get(target).and_then(|t| t.proxy);
            if let (false, Some(addr)) = (from_flags, configured) {
                proxy.push(ProxySpec {
                    target: Some(target.qualified()),
                    addr,
                });
            }
        }
        self.proxy = launch::bindings(&proxy, &targets)?;
        self.env_files = read_env_files(
            self.flags
                .env_file
                .iter()
                .map(|f| (f, "--env-file"))
                .chain(hot.env_file.iter().map(|f| (f, "env-file")))
                .chain(
                    targets
                        .iter()
                        .filter_map(|t| hot.targets.get(t)?.env_file.as_ref())
                        .map(|f| (f, "a target's env-file")),
                ),
        )?;
        // `-c` wins; otherwise the configuration's `clear`.
        self.output.alerts.clear = self.flags.clear || hot.clear == Some(true);
        self.hot = hot;
        Ok(targets)
    }

    /// Whether requests for `target` come through the proxy.
    pub fn proxied(&self, target: &TargetId) -> bool {
        self.proxy.iter().any(|b| b.target == target.to_string())
    }

    /// What to watch: the workspace's packages, the `--watch` directories, and every env file
    /// in use (even one `.gitignore` lists); never the target dir.
    pub fn watch_spec(&self, workspace: &Workspace) -> WatchSpec {
        let mut roots = workspace.watch_roots();
        roots.extend(self.extra_roots.iter().cloned());
        let keep: Vec<PathBuf> = self.env_files.keys().cloned().collect();
        for file in &keep {
            match file.parent() {
                Some(dir) if !roots.iter().any(|r| dir.starts_with(r)) => roots.push(dir.into()),
                _ => {}
            }
        }
        WatchSpec {
            roots,
            always_ignore: vec![workspace.target_dir().to_path_buf()],
            extra_ignores: self.ignore.clone(),
            poll: self.poll,
            native_only: self.native_only,
            keep,
        }
    }

    /// Whether `path` is an env file some target reads: a change to it restarts them.
    pub fn is_env_file(&self, path: &Path) -> bool {
        self.env_files.contains_key(path)
    }

    /// The `--watch` directory `path` is under, if any (and not under the workspace's own).
    pub fn extra_root_of(&self, path: &Path, workspace: &Workspace) -> Option<&Path> {
        if workspace.watch_roots().iter().any(|r| path.starts_with(r)) {
            return None;
        }
        self.extra_roots
            .iter()
            .find(|r| path.starts_with(r))
            .map(PathBuf::as_path)
    }

    /// The env files `target` reads, in order (later ones win): the `--env-file` (else the
    /// configuration's top-level `env-file`), then its own `env-file`.
    pub fn env_files_of(&self, target: &TargetId) -> Vec<PathBuf> {
        let shared = self.flags.env_file.as_ref().or(self.hot.env_file.as_ref());
        let own = self
            .hot
            .targets
            .get(target)
            .and_then(|t| t.env_file.as_ref());
        shared.into_iter().chain(own).cloned().collect()
    }

    /// Whether any target waits for `READY=1`, so the notify socket is needed.
    pub fn wants_notify(&self, targets: &[TargetId]) -> bool {
        self.ready.iter().any(|r| r.check == ReadyCheck::Notify)
            || targets.iter().any(|t| {
                self.hot
                    .targets
                    .get(t)
                    .and_then(|c| c.ready.as_ref())
                    .is_some_and(|r| *r == ReadyCheck::Notify)
            })
    }
}

/// The ignore globs of a session: the configuration's, its `watch` entries' `ignore` ones,
/// then the command line's.
pub fn watch_ignores(hot: &HotConfig, workspace: &Workspace, flags: &[String]) -> Vec<String> {
    hot.ignore
        .iter()
        .cloned()
        .chain(merge::ignored_globs(hot, workspace.root()))
        .chain(flags.iter().cloned())
        .collect()
}

/// How one target is run and restarted, resolved from the flags that may name it and its
/// `targets.<bin>` configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct TargetSettings {
    pub ready: ReadyCheck,
    pub policy: JobPolicy,
    pub args: Vec<OsString>,
    /// Set on top of cargo hot's own environment.
    pub env: Vec<(OsString, OsString)>,
    pub cwd: PathBuf,
    /// For a proxied target: the variable each run reads its port from.
    pub port_env: Option<String>,
}

impl RunConfig {
    /// Settings for `target`, which is handed `socket_count` sockets.
    ///
    /// Overlap needs a socket shared by old and new: a target that binds its own port cannot
    /// have two processes at once, so by default it is restarted stop-then-start; its
    /// `overlap` key says otherwise (a program that can run twice, e.g. with SO_REUSEPORT),
    /// and `--no-overlap` beats both.
    ///
    /// Each value: the flag if given, else the target's configuration, else the default.
    pub fn target_settings(&self, target: &TargetId, socket_count: usize) -> TargetSettings {
        let configured = self.hot.targets.get(target);
        let named = self.ready.iter().find(|r| {
            r.target
                .as_deref()
                .is_some_and(|n| target_matches(n, target))
        });
        let ready = named
            .or_else(|| self.ready.iter().find(|r| r.target.is_none()))
            .map(|r| r.check.clone())
            .or_else(|| configured.and_then(|c| c.ready.clone()))
            .unwrap_or(if socket_count > 0 {
                ReadyCheck::NotifyOrDelay(SOCKET_GRACE)
            } else {
                ReadyCheck::Started
            });
        let proxied = self.proxied(target);
        // A proxied run has a port of its own, so old and new can always overlap.
        let overlap = self.overlap
            && configured
                .and_then(|c| c.overlap)
                .unwrap_or(socket_count > 0 || proxied);
        let handoff = match (overlap, proxied) {
            (true, true) => Handoff::Drain,
            (true, false) => Handoff::Overlap,
            (false, _) => Handoff::StopFirst,
        };
        let signal = self
            .flags
            .signal
            .or(configured.and_then(|c| c.signal))
            .unwrap_or(self.stop_signal);
        let timeout = self
            .flags
            .stop_timeout
            .or(configured.and_then(|c| c.stop_timeout))
            .unwrap_or(self.stop_timeout);
        let args = if self.target_args.is_empty() {
            configured.and_then(|c| c.args.clone()).unwrap_or_default()
        } else {
            self.target_args.clone()
        };
        TargetSettings {
            policy: JobPolicy {
                stop: StopPolicy { signal, timeout },
                handoff,
                // A proxied run without a check of its own waits for its port to accept.
                ready_timeout: (ready != ReadyCheck::Started || proxied)
                    .then_some(self.ready_timeout),
            },
            port_env: proxied.then(|| {
                configured
                    .and_then(|c| c.proxy_port_env.clone())
                    .unwrap_or_else(|| launch::DEFAULT_PORT_ENV.to_string())
            }),
            ready,
            args,
            env: self.target_env(target),
            cwd: configured
                .and_then(|c| c.cwd.clone())
                .unwrap_or_else(|| self.cwd.clone()),
        }
    }

    /// A target's variables, lowest precedence first: its env files, its `env` table, `-E`.
    fn target_env(&self, target: &TargetId) -> Vec<(OsString, OsString)> {
        let from_files = self
            .env_files_of(target)
            .into_iter()
            .flat_map(|file| self.env_files.get(&file).cloned().unwrap_or_default());
        let table = self
            .hot
            .targets
            .get(target)
            .into_iter()
            .flat_map(|c| c.env.iter().map(|(k, v)| (k.clone(), v.clone())));
        from_files
            .chain(table)
            .chain(self.flags.env.iter().cloned())
            .map(|(k, v)| (k.into(), v.into()))
            .collect()
    }

    /// Checks what `--listen` and `--ready` say against the selected targets and the bound
    /// sockets, so a typo fails at start instead of silently doing nothing.
    pub fn check_restart_flags(&self, targets: &[TargetId], sockets: &Sockets) -> Result<()> {
        let names = || {
            targets
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let named = self
            .listen
            .iter()
            .filter_map(|l| l.target.as_deref().map(|n| ("--listen", n)))
            .chain(
                self.ready
                    .iter()
                    .filter_map(|r| r.target.as_deref().map(|n| ("--ready", n))),
            );
        for (flag, name) in named {
            if !targets.iter().any(|t| target_matches(name, t)) {
                bail!(
                    "{flag} names `{name}`, which is not a selected target; the selected targets are: {}",
                    names()
                );
            }
        }
        for target in targets {
            let count = sockets.for_target(target).count();
            let settings = self.target_settings(target, count);
            if let Some(addr) = settings.ready.probed_addr() {
                if count > 0 && settings.policy.handoff == Handoff::Overlap && sockets.holds(&addr)
                {
                    bail!(
                        "--ready for {target} probes {addr}, the socket cargo hot hands to it: while old and new overlap, the old process would answer. Use --ready notify or log:REGEX, a health port the program binds itself, or --no-overlap"
                    );
                }
                if matches!(settings.ready, ReadyCheck::Tcp(_)) && sockets.holds(&addr) {
                    bail!(
                        "--ready tcp:{addr} for {target} always succeeds: cargo hot holds that socket, so the kernel accepts the connection. Use --ready notify, log:REGEX or an http:// check"
                    );
                }
            }
        }
        Ok(())
    }
}

/// Reads each dotenv file once; `what` names the flag or key that asked for it in errors.
fn read_env_files<'a>(
    files: impl Iterator<Item = (&'a PathBuf, &'static str)>,
) -> Result<BTreeMap<PathBuf, Vec<(String, String)>>> {
    let mut read = BTreeMap::new();
    for (file, what) in files {
        if read.contains_key(file) {
            continue;
        }
        let vars = dotenvy::from_path_iter(file)
            .and_then(|lines| lines.collect::<std::result::Result<Vec<_>, _>>())
            .with_context(|| {
                format!(
                    "failed to read the env file {} ({what}): fix or create it",
                    file.display()
                )
            })?;
        read.insert(file.clone(), vars);
    }
    Ok(read)
}

pub fn selection(args: &SelectionArgs) -> Selection {
    Selection {
        packages: args.packages.clone(),
        bins: args.bins.clone(),
        examples: args.examples.clone(),
        all_bins: args.all_bins,
        all_examples: args.all_examples,
        workspace: args.workspace,
        exclude: args.exclude.clone(),
    }
}

impl OutputConfig {
    pub fn resolve(args: &OutputArgs, env: &Env) -> Result<OutputConfig> {
        let verbosity = if args.quiet {
            Verbosity::Quiet
        } else if args.verbose > 0 {
            Verbosity::Verbose
        } else {
            Verbosity::Normal
        };
        let color = color_enabled(args.color, env)?;
        // Bars are escape codes: whoever asked for no colour (NO_COLOR, CARGO_TERM_COLOR=never,
        // --color never) or reads a pipe gets plain lines, flushed one by one.
        let format = if args.json {
            OutputFormat::Json
        } else if !args.plain && color && env.stdout_is_terminal && env.stderr_is_terminal {
            OutputFormat::Live
        } else {
            OutputFormat::Human
        };
        Ok(OutputConfig {
            format,
            json_output: args.json_output,
            verbosity,
            color,
            keys: format == OutputFormat::Live && env.stdin_is_terminal,
            alerts: AlertOptions {
                clear: args.clear,
                bell: args.bell,
                notify: args.notify,
            },
            target_keys: true,
        })
    }
}

/// `--color` beats `CARGO_TERM_COLOR`, which beats `NO_COLOR`, which beats "is it a terminal".
fn color_enabled(flag: Option<ColorChoice>, env: &Env) -> Result<bool> {
    let choice = match (flag, env.cargo_term_color.as_deref()) {
        (Some(choice), _) => choice,
        (None, Some("always")) => ColorChoice::Always,
        (None, Some("never")) => ColorChoice::Never,
        (None, Some("auto")) | (None, None) => ColorChoice::Auto,
        (None, Some(other)) => {
            bail!("invalid CARGO_TERM_COLOR value `{other}`: expected `auto`, `always` or `never`")
        }
    };
    Ok(match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => !env.no_color && env.stderr_is_terminal,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::CargoArgs;

    fn env(term_color: Option<&str>, no_color: bool, tty: bool) -> Env {
        Env {
            cargo: None,
            cargo_term_color: term_color.map(str::to_string),
            no_color,
            stderr_is_terminal: tty,
            stdout_is_terminal: tty,
            stdin_is_terminal: tty,
        }
    }

    #[test]
    fn live_view_only_on_a_coloured_terminal() {
        let resolve = |args: OutputArgs, env: &Env| OutputConfig::resolve(&args, env).unwrap();
        let live = resolve(OutputArgs::default(), &env(None, false, true));
        assert_eq!(live.format, OutputFormat::Live);
        assert!(live.keys);
        let plain = OutputArgs {
            plain: true,
            ..OutputArgs::default()
        };
        let plain = resolve(plain, &env(None, false, true));
        assert_eq!(plain.format, OutputFormat::Human);
        assert!(!plain.keys);
        for no_live in [
            env(None, true, true),
            env(Some("never"), false, true),
            env(None, false, false),
        ] {
            assert_eq!(
                resolve(OutputArgs::default(), &no_live).format,
                OutputFormat::Human
            );
        }
        let mut piped = env(None, false, true);
        piped.stdout_is_terminal = false;
        assert_eq!(
            resolve(OutputArgs::default(), &piped).format,
            OutputFormat::Human
        );
        let mut no_keys = env(None, false, true);
        no_keys.stdin_is_terminal = false;
        let config = resolve(OutputArgs::default(), &no_keys);
        assert_eq!(config.format, OutputFormat::Live);
        assert!(!config.keys);
    }

    #[test]
    fn color_precedence() {
        assert!(color_enabled(None, &env(None, false, true)).unwrap());
        assert!(!color_enabled(None, &env(None, false, false)).unwrap());
        assert!(!color_enabled(None, &env(None, true, true)).unwrap());
        assert!(color_enabled(None, &env(Some("always"), true, false)).unwrap());
        assert!(!color_enabled(None, &env(Some("never"), false, true)).unwrap());
        assert!(
            color_enabled(Some(ColorChoice::Always), &env(Some("never"), true, false)).unwrap()
        );
        let err = color_enabled(None, &env(Some("sometimes"), false, true)).unwrap_err();
        assert!(err.to_string().contains("CARGO_TERM_COLOR"));
    }

    #[test]
    fn cargo_from_environment() {
        let mut e = env(None, false, false);
        e.cargo = Some("/opt/rust/bin/cargo".into());
        let opts = CargoOptions::resolve(&CargoArgs::default(), 0, false, &e);
        assert_eq!(opts.program, PathBuf::from("/opt/rust/bin/cargo"));
        let opts = CargoOptions::resolve(&CargoArgs::default(), 0, false, &Env::default());
        assert_eq!(opts.program, PathBuf::from("cargo"));
    }

    fn api() -> TargetId {
        TargetId {
            package: "api".into(),
            name: "api".into(),
            kind: crate::workspace::RunKind::Bin,
        }
    }

    fn with_api_config(args: &RunArgs, layer: TargetLayer) -> RunConfig {
        let mut config = RunConfig::resolve(args, &Env::default(), Path::new("/start")).unwrap();
        config.hot.targets.insert(api(), layer);
        config
    }

    fn configured_api() -> TargetLayer {
        TargetLayer {
            args: Some(vec!["--from-config".into()]),
            env: [("RUST_LOG".to_string(), "debug".to_string())].into(),
            env_file: None,
            cwd: Some("/ws/api".into()),
            listen: None,
            proxy: None,
            proxy_port_env: None,
            ready: Some(ReadyCheck::Notify),
            signal: Some(Signal::INT),
            stop_timeout: Some(Duration::from_secs(10)),
            overlap: Some(true),
            hooks: Default::default(),
        }
    }

    #[test]
    fn defaults_without_configuration() {
        let config =
            RunConfig::resolve(&RunArgs::default(), &Env::default(), Path::new("/start")).unwrap();
        let settings = config.target_settings(&api(), 0);
        assert_eq!(settings.policy.stop.signal, DEFAULT_SIGNAL);
        assert_eq!(settings.policy.stop.timeout, DEFAULT_STOP_TIMEOUT);
        assert_eq!(settings.policy.handoff, Handoff::StopFirst);
        assert_eq!(settings.ready, ReadyCheck::Started);
        assert!(settings.args.is_empty() && settings.env.is_empty());
        assert_eq!(settings.cwd, PathBuf::from("/start"));
        assert_eq!(config.debounce, DEFAULT_DEBOUNCE);
        assert_eq!(
            config.target_settings(&api(), 1).policy.handoff,
            Handoff::Overlap
        );
        // A target handed sockets: READY=1 if it sends one, else the grace.
        assert_eq!(
            config.target_settings(&api(), 1).ready,
            ReadyCheck::NotifyOrDelay(SOCKET_GRACE)
        );
        assert!(config.target_settings(&api(), 1).ready.uses_notify());
    }

    #[test]
    fn configuration_beats_defaults() {
        let config = with_api_config(&RunArgs::default(), configured_api());
        let settings = config.target_settings(&api(), 0);
        assert_eq!(settings.policy.stop.signal, Signal::INT);
        assert_eq!(settings.policy.stop.timeout, Duration::from_secs(10));
        // `overlap = true` holds even without a socket.
        assert_eq!(settings.policy.handoff, Handoff::Overlap);
        assert_eq!(settings.ready, ReadyCheck::Notify);
        assert_eq!(settings.policy.ready_timeout, Some(config.ready_timeout));
        assert_eq!(settings.args, [OsString::from("--from-config")]);
        assert_eq!(
            settings.env,
            [(OsString::from("RUST_LOG"), OsString::from("debug"))]
        );
        assert_eq!(settings.cwd, PathBuf::from("/ws/api"));
        assert!(config.wants_notify(&[api()]));
        // `overlap = false` holds even with a socket.
        let mut no_overlap = configured_api();
        no_overlap.overlap = Some(false);
        let config = with_api_config(&RunArgs::default(), no_overlap);
        assert_eq!(
            config.target_settings(&api(), 1).policy.handoff,
            Handoff::StopFirst
        );
    }

    #[test]
    fn command_line_beats_configuration() {
        let args = RunArgs {
            signal: Some("SIGQUIT".into()),
            stop_timeout: Some(Duration::from_secs(1)),
            ready: vec!["delay:1s".into()],
            no_overlap: true,
            args: vec!["--from-flags".into()],
            ..RunArgs::default()
        };
        let config = with_api_config(&args, configured_api());
        let settings = config.target_settings(&api(), 0);
        assert_eq!(settings.policy.stop.signal, Signal::QUIT);
        assert_eq!(settings.policy.stop.timeout, Duration::from_secs(1));
        assert_eq!(settings.policy.handoff, Handoff::StopFirst);
        assert_eq!(settings.ready, ReadyCheck::Delay(Duration::from_secs(1)));
        assert_eq!(settings.args, [OsString::from("--from-flags")]);
        // Keys with no flag still come from the configuration.
        assert_eq!(settings.cwd, PathBuf::from("/ws/api"));
        assert_eq!(settings.env.len(), 1);
    }

    #[test]
    fn a_proxied_target_drains_and_waits_for_its_port() {
        let mut config =
            RunConfig::resolve(&RunArgs::default(), &Env::default(), Path::new("/start")).unwrap();
        config.proxy = vec![Binding {
            target: "api".into(),
            addr: "127.0.0.1:3000".parse().unwrap(),
        }];
        assert!(config.proxied(&api()));
        let settings = config.target_settings(&api(), 0);
        assert_eq!(settings.policy.handoff, Handoff::Drain);
        assert_eq!(
            settings.ready,
            ReadyCheck::Started,
            "the engine probes the run's port"
        );
        assert_eq!(settings.policy.ready_timeout, Some(config.ready_timeout));
        assert_eq!(settings.port_env.as_deref(), Some("PORT"));

        let mut layer = configured_api();
        layer.proxy_port_env = Some("APP_PORT".into());
        layer.overlap = None;
        config.hot.targets.insert(api(), layer);
        let settings = config.target_settings(&api(), 0);
        assert_eq!(settings.port_env.as_deref(), Some("APP_PORT"));
        assert_eq!(
            settings.ready,
            ReadyCheck::Notify,
            "a configured check wins"
        );
        assert_eq!(settings.policy.handoff, Handoff::Drain);

        config.overlap = false;
        assert_eq!(
            config.target_settings(&api(), 0).policy.handoff,
            Handoff::StopFirst,
            "--no-overlap: requests wait in the proxy meanwhile"
        );
        assert_eq!(
            RunConfig::resolve(&RunArgs::default(), &Env::default(), Path::new("/s"))
                .unwrap()
                .target_settings(&api(), 0)
                .port_env,
            None
        );
    }

    #[test]
    fn env_files_then_the_env_table_then_dash_e() {
        let dir = tempfile::tempdir().unwrap();
        let shared = dir.path().join(".env");
        let own = dir.path().join("api.env");
        std::fs::write(
            &shared,
            "# shared\nA=file\nB=file\nC=file\nQ=\"two words\"\n",
        )
        .unwrap();
        std::fs::write(&own, "A=own\n").unwrap();
        let args = RunArgs {
            env: vec![("C".into(), "flag".into())],
            env_file: Some(shared.clone()),
            ..RunArgs::default()
        };
        let mut layer = configured_api();
        layer.env = [("B".to_string(), "table".to_string())].into();
        layer.env_file = Some(own.clone());
        let mut config = with_api_config(&args, layer);
        assert_eq!(config.env_files_of(&api()), [shared.clone(), own.clone()]);
        config.env_files =
            read_env_files([(&shared, "--env-file"), (&own, "env-file")].into_iter()).unwrap();
        let env = config.target_settings(&api(), 0).env;
        // Later entries win when the process starts: the last value of each name counts.
        let last = |name: &str| {
            env.iter()
                .rev()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.to_string_lossy().into_owned())
        };
        assert_eq!(last("A").as_deref(), Some("own"));
        assert_eq!(last("B").as_deref(), Some("table"));
        assert_eq!(last("C").as_deref(), Some("flag"));
        assert_eq!(last("Q").as_deref(), Some("two words"));

        let missing = dir.path().join("nope.env");
        let e = format!(
            "{:#}",
            read_env_files([(&missing, "--env-file")].into_iter()).unwrap_err()
        );
        assert!(e.contains("nope.env (--env-file)"), "{e}");
    }

    #[test]
    fn cargo_config_flags_go_to_cargo_and_a_hot_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("hot.toml"),
            "debounce = \"1s\"\n[targets.api]\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("cargo.toml"), "[build]\njobs = 1\n").unwrap();
        let e = check_cargo_config(&["hot.toml".into()], dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains("--hot-config hot.toml"), "{e}");
        assert!(e.contains("debounce, targets"), "{e}");
        // Cargo's own settings, inline or in a file, pass.
        check_cargo_config(
            &[
                "build.jobs=1".into(),
                "cargo.toml".into(),
                "missing.toml".into(),
            ],
            dir.path(),
        )
        .unwrap();
        let args = RunArgs {
            cargo: CargoArgs {
                config: vec!["hot.toml".into()],
                ..CargoArgs::default()
            },
            ..RunArgs::default()
        };
        assert!(RunConfig::resolve(&args, &Env::default(), dir.path()).is_err());
    }

    #[test]
    fn cargo_conventions_pass_through() {
        let args = CargoArgs {
            jobs: Some("2".into()),
            target: Some("wasm32-wasip1".into()),
            ignore_rust_version: true,
            config: vec!["build.jobs=1".into(), "profile.dev.debug=0".into()],
            ..CargoArgs::default()
        };
        let opts = CargoOptions::resolve(&args, 0, false, &Env::default());
        let got: Vec<String> = opts
            .common_args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            got,
            [
                "--jobs",
                "2",
                "--target",
                "wasm32-wasip1",
                "--ignore-rust-version",
                "--config",
                "build.jobs=1",
                "--config",
                "profile.dev.debug=0"
            ]
        );
        assert_eq!(
            opts.metadata_request(Path::new("/w")).config,
            ["build.jobs=1", "profile.dev.debug=0"]
        );
    }

    #[test]
    fn common_args_pass_through() {
        let args = CargoArgs {
            release: true,
            features: vec!["a,b".into()],
            locked: true,
            target_dir: Some("out".into()),
            ..CargoArgs::default()
        };
        let opts = CargoOptions::resolve(&args, 1, false, &Env::default());
        let got: Vec<String> = opts
            .common_args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect();
        assert_eq!(
            got,
            [
                "--release",
                "--features",
                "a,b",
                "--locked",
                "--target-dir",
                "out",
                "-v"
            ]
        );
    }
}
