//! The command line, as the user types it: clap derive types and nothing else.
//!
//! These are the raw flags; [`crate::config`] resolves them (with the environment) into the
//! one [`crate::config::RunConfig`] the rest of the program reads, so no other module ever
//! looks at a flag. The flags follow `cargo run`/`cargo build` wherever cargo has one, so a
//! user's fingers already know them.

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::duration::{parse_duration, parse_poll_interval};

/// `KEY=VAL` for `--env`: the name must be non-empty; the value may be empty or hold `=`.
fn parse_env(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() && !key.contains('\0') => {
            Ok((key.to_string(), value.to_string()))
        }
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

/// Cargo calls an external subcommand as `cargo-hot hot ARGS…`; called directly it is
/// `cargo-hot ARGS…`. This drops the extra word so both parse the same.
pub fn normalize_args(mut args: Vec<OsString>) -> Vec<OsString> {
    if args.get(1).is_some_and(|a| a == "hot") {
        args.remove(1);
    }
    args
}

/// Watch a Cargo workspace, rebuild only what a change touches, and restart only that.
#[derive(Debug, Parser)]
#[command(
    name = "cargo-hot",
    bin_name = "cargo hot",
    version,
    about,
    long_about = "Runs binary targets of a Cargo workspace and, when a file changes, rebuilds \
                  only the binaries that depend on it and restarts only those. The old process \
                  keeps running while the new build compiles; a failed build leaves it running.",
    args_conflicts_with_subcommands = true,
    max_term_width = 100
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,

    /// `run` is the default subcommand: `cargo hot -p api` is `cargo hot run -p api`.
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the selected binaries and rebuild/restart them on change (the default).
    Run(Box<RunArgs>),
    /// Print which packages and binaries a set of changed paths affects, and why, then exit.
    ///
    /// Paths come from the arguments, or one per line on stdin when there are none, so
    /// `git diff --name-only main | cargo hot affected --workspace` answers "which services
    /// does this branch touch?".
    Affected(AffectedArgs),
    /// Add a commented starter [workspace.metadata.hot] section, listing the workspace's
    /// binaries, to the root Cargo.toml. Nothing else in the file changes.
    Init(InitArgs),
    /// On each change, run `cargo test` for the packages it affects (their dependents through
    /// dev-dependencies too); a change to one file under `tests/` runs that test alone.
    Test(TestArgs),
    /// On each change, run `cargo check --all-targets` for the packages it affects.
    Check(CheckArgs),
    /// On each change, run `cargo clippy --all-targets` for the packages it affects.
    Clippy(ClippyArgs),
    /// Print a completion script for SHELL, e.g. `cargo hot completions bash >
    /// ~/.local/share/bash-completion/completions/cargo-hot`.
    Completions(CompletionsArgs),
    /// Print the man page (roff), e.g. `cargo hot man | man -l -`.
    Man,
    /// Print the JSON Schema of the `--json` event stream (`events`) or of `affected --json`
    /// (`affected`).
    Schema(SchemaArgs),
}

#[derive(Debug, Clone, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Clone, Args)]
pub struct SchemaArgs {
    /// Which document the schema describes.
    #[arg(value_enum)]
    pub kind: SchemaKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    /// Every line of `cargo hot --json` (an event, or a target's `output` line).
    Events,
    /// The document `cargo hot affected --json` prints.
    Affected,
}

/// Which targets to run, in cargo's words.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Target selection")]
pub struct SelectionArgs {
    /// Package to select (all its binaries unless --bin narrows it); repeatable.
    #[arg(short = 'p', long = "package", value_name = "SPEC")]
    pub packages: Vec<String>,
    /// Binary target to run; repeatable.
    #[arg(long = "bin", value_name = "NAME")]
    pub bins: Vec<String>,
    /// Example target to run; repeatable.
    #[arg(long = "example", value_name = "NAME")]
    pub examples: Vec<String>,
    /// Every binary target of the selected packages.
    #[arg(long = "bins")]
    pub all_bins: bool,
    /// Every example target of the selected packages.
    #[arg(long = "examples")]
    pub all_examples: bool,
    /// Every binary target of every workspace member.
    #[arg(long)]
    pub workspace: bool,
    /// With --workspace: leave this package out; repeatable.
    #[arg(long, value_name = "SPEC", requires = "workspace")]
    pub exclude: Vec<String>,
}

/// Which members `cargo hot test|check|clippy` covers.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Package selection")]
pub struct PackageSelectionArgs {
    /// Only this member's tests or lints (when a change affects it); repeatable.
    #[arg(short = 'p', long = "package", value_name = "SPEC")]
    pub packages: Vec<String>,
    /// Every member (the default).
    #[arg(long, conflicts_with = "packages")]
    pub workspace: bool,
    /// Leave this member out; repeatable.
    #[arg(long, value_name = "SPEC")]
    pub exclude: Vec<String>,
}

/// Flags passed through to every cargo command we run.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Cargo options")]
pub struct CargoArgs {
    /// Build with the release profile.
    #[arg(short = 'r', long, conflicts_with = "profile")]
    pub release: bool,
    /// Build with the named profile.
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Space or comma separated features to activate.
    #[arg(short = 'F', long, value_name = "FEATURES")]
    pub features: Vec<String>,
    /// Activate all available features.
    #[arg(long)]
    pub all_features: bool,
    /// Do not activate the `default` feature.
    #[arg(long)]
    pub no_default_features: bool,
    /// Directory for all generated artifacts (also read from CARGO_TARGET_DIR by cargo).
    #[arg(long, value_name = "DIR")]
    pub target_dir: Option<PathBuf>,
    /// Path to Cargo.toml.
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
    /// Assert that Cargo.lock will remain unchanged.
    #[arg(long)]
    pub locked: bool,
    /// Run without accessing the network.
    #[arg(long)]
    pub offline: bool,
    /// Equivalent to --locked and --offline.
    #[arg(long)]
    pub frozen: bool,
    /// Number of parallel jobs cargo runs (cargo's -j).
    #[arg(short = 'j', long, value_name = "N", allow_negative_numbers = true)]
    pub jobs: Option<String>,
    /// Build for the target triple; the executables are then under target/TRIPLE/.
    #[arg(long, value_name = "TRIPLE")]
    pub target: Option<String>,
    /// Ignore `rust-version` specification in packages.
    #[arg(long)]
    pub ignore_rust_version: bool,
    /// Override a cargo configuration value (cargo's own --config); repeatable. cargo hot's
    /// configuration file is --hot-config.
    #[arg(long = "config", value_name = "KEY=VALUE|PATH")]
    pub config: Vec<String>,
}

#[derive(Debug, Clone, Default, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub selection: SelectionArgs,

    #[command(flatten)]
    pub cargo: CargoArgs,

    /// Read cargo hot's configuration from this TOML file too: the shape of
    /// `[workspace.metadata.hot]` at its top level. Its keys beat the manifests'; flags beat it.
    #[arg(
        long = "hot-config",
        value_name = "FILE",
        help_heading = "Configuration"
    )]
    pub hot_config: Option<PathBuf>,

    /// Build with cargo's --keep-going: when one target fails to build, cargo goes on with
    /// the others and shows all their errors (a failed build still restarts nothing).
    #[arg(long, help_heading = "Cargo options")]
    pub keep_going: bool,

    /// Quiet period after the last file event before building [default: 10ms; on Linux 2ms
    /// once every changed file is closed].
    ///
    /// A burst of writes (a `git checkout`, `cargo fmt`) ends in one build. The events of one
    /// save (an editor's temp file, rename, write) come within a millisecond or two, so 10ms
    /// holds them together while adding little to the wait for a build; where the OS reports
    /// that the writer closed the file (inotify), 2ms is enough. A value given here applies
    /// exactly, closes or not. Also `2s`, `500` (milliseconds).
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Watching")]
    pub debounce: Option<Duration>,
    /// Poll the file system instead of using native events (Docker bind mounts, network
    /// shares); INTERVAL defaults to 500ms.
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1, require_equals = true,
          default_missing_value = "500ms", value_parser = parse_poll_interval, help_heading = "Watching")]
    pub poll: Option<Duration>,
    /// Never poll, not even where native file events do not arrive (beats `poll` in the
    /// configuration and the automatic choice on 9p, NFS, CIFS, virtiofs and WSL drives).
    #[arg(long, conflicts_with = "poll", help_heading = "Watching")]
    pub no_poll: bool,
    /// Ignore paths matching this gitignore-style glob, on top of .gitignore; repeatable.
    #[arg(
        short = 'i',
        long = "ignore",
        value_name = "GLOB",
        help_heading = "Watching"
    )]
    pub ignore: Vec<String>,
    /// Also watch this directory (outside the workspace, say `../assets`); repeatable. Its
    /// .gitignore and --ignore apply; a change there restarts the targets (or does what a
    /// `watch` entry says).
    #[arg(
        short = 'w',
        long = "watch",
        value_name = "DIR",
        help_heading = "Watching"
    )]
    pub watch: Vec<PathBuf>,

    /// Signal that asks a target to stop: any the platform has, as `USR1`, `SIGUSR1` or a
    /// number [default: SIGTERM].
    #[arg(long, value_name = "SIGNAL", help_heading = "Processes")]
    pub signal: Option<String>,
    /// How long a target may take to stop before it is killed [default: 5s].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration,
          help_heading = "Processes")]
    pub stop_timeout: Option<Duration>,
    /// Set an environment variable for the targets; repeatable. Beats `env` and env files.
    #[arg(short = 'E', long = "env", value_name = "KEY=VAL", value_parser = parse_env,
          help_heading = "Processes")]
    pub env: Vec<(String, String)>,
    /// Read environment variables for the targets from this dotenv file (`KEY=VALUE` lines),
    /// instead of the configuration's `env-file`.
    #[arg(long, value_name = "PATH", help_heading = "Processes")]
    pub env_file: Option<PathBuf>,
    /// Give this target the terminal's input (it runs in cargo hot's foreground process
    /// group, so it can read the terminal); the status area and the keys are then off.
    #[arg(long = "stdin", value_name = "TARGET", help_heading = "Processes")]
    pub stdin_target: Option<String>,

    /// Listen on ADDR in cargo hot and hand the socket to the targets (systemd socket
    /// activation: fd 3, LISTEN_FDS, LISTEN_PID), so the port never closes across restarts.
    ///
    /// `127.0.0.1:3000`, `:3000` (loopback), `[::1]:3000`, `0.0.0.0:3000`, `unix:PATH`.
    /// `api=:3000` gives the socket to the target `api` only; without a name every selected
    /// target gets it. Repeatable: the sockets are fds 3, 4, … in this order.
    #[arg(long, value_name = "[TARGET=]ADDR", help_heading = "Restarts")]
    pub listen: Vec<String>,
    /// Serve HTTP on ADDR in cargo hot and forward each request to the newest ready run of
    /// the target, which binds the fresh loopback port it is given in PORT. No change to the
    /// app; pages reload by themselves after a rebuild (docs/proxy.md).
    ///
    /// `127.0.0.1:3000`, `:3000` (loopback), `0.0.0.0:3000`. `web=:3000` serves the target
    /// `web`; without a name, the only selected target. Repeatable.
    #[arg(long, value_name = "[TARGET=]ADDR", help_heading = "Restarts")]
    pub proxy: Vec<String>,
    /// How long a request through --proxy waits for a ready run (the first build, a crash)
    /// before it gets 503.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration,
          help_heading = "Restarts")]
    pub proxy_wait: Duration,
    /// With --proxy: do not inject the live-reload script into HTML pages.
    #[arg(long, help_heading = "Restarts")]
    pub no_reload: bool,
    /// When a new process counts as ready, so the old one can stop: `notify` (sd_notify
    /// READY=1), `tcp:ADDR`, `http://ADDR/PATH` (a 2xx answer), `log:REGEX` (a line it
    /// prints), `delay:DURATION`.
    ///
    /// `api=notify` sets it for the target `api` only. Default: for a target handed sockets,
    /// READY=1 if it sends one, else after 500ms alive; at once for any other.
    #[arg(long, value_name = "[TARGET=]SPEC", help_heading = "Restarts")]
    pub ready: Vec<String>,
    /// How long a new process may take to become ready before it is stopped (the old one
    /// keeps serving).
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration,
          help_heading = "Restarts")]
    pub ready_timeout: Duration,
    /// Stop the old process before starting the new one, for programs that cannot run twice
    /// at once (a lock file, a port they bind themselves). With --listen, connections wait in
    /// the socket's backlog during the gap.
    #[arg(long, help_heading = "Restarts")]
    pub no_overlap: bool,

    #[command(flatten)]
    pub output: OutputArgs,

    /// Arguments passed to every target.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<OsString>,
}

/// How we talk to the user.
#[derive(Debug, Clone, Default, Args)]
#[command(next_help_heading = "Output")]
pub struct OutputArgs {
    /// Print newline-delimited JSON events on stdout (the targets' output goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// With --json: targets' output becomes `output` events on stdout instead of stderr lines.
    #[arg(long, requires = "json")]
    pub json_output: bool,
    /// Only errors and the targets' own output (no status lines, no warnings, no compiler
    /// output unless a build fails).
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
    /// Clear the screen before each build.
    #[arg(short = 'c', long)]
    pub clear: bool,
    /// Ring the terminal bell when a build fails.
    #[arg(long)]
    pub bell: bool,
    /// Desktop notification when a build fails and when the next build fixes it.
    #[arg(short = 'N', long)]
    pub notify: bool,
    /// Also print every file event and the cargo command lines; passed to cargo as -v.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Coloring: auto, always, never (CARGO_TERM_COLOR and NO_COLOR are honoured).
    #[arg(long, value_name = "WHEN")]
    pub color: Option<ColorChoice>,
    /// One plain line per event, no live status area, no progress bars, no colours (the
    /// default when stdout or stderr is not a terminal).
    #[arg(long, conflicts_with = "json")]
    pub plain: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Args)]
pub struct AffectedArgs {
    #[command(flatten)]
    pub selection: SelectionArgs,

    /// Cargo's flags: they pick the graph (features), the profile whose dep-info earlier
    /// builds left, and what `--check` runs.
    #[command(flatten)]
    pub cargo: CargoArgs,

    /// Print one JSON document instead of text (its schema: `cargo hot schema affected`).
    #[arg(long)]
    pub json: bool,

    /// Answer from the dependency graph alone, ignoring what earlier builds left in the
    /// target dir: coarser, but the same on every machine.
    #[arg(long, conflicts_with = "check")]
    pub graph_only: bool,

    /// Run `cargo check` on the selected targets first, so the answer has build knowledge
    /// even without a warm target dir (CI).
    #[arg(long)]
    pub check: bool,

    /// Changed paths (relative to the current directory); read from stdin when none.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

/// What `test`, `check` and `clippy` share: cargo's flags and how to watch.
#[derive(Debug, Clone, Args)]
pub struct WatchArgs {
    #[command(flatten)]
    pub selection: PackageSelectionArgs,
    #[command(flatten)]
    pub cargo: CargoArgs,
    #[command(flatten)]
    pub output: OutputArgs,
    /// Quiet period after the last file event before running [default: 10ms; on Linux 2ms
    /// once every changed file is closed].
    #[arg(long, value_name = "DURATION", value_parser = parse_duration, help_heading = "Watching")]
    pub debounce: Option<Duration>,
    /// Read cargo hot's configuration from this TOML file too (on top of Cargo.toml's).
    #[arg(long = "hot-config", value_name = "FILE")]
    pub hot_config: Option<PathBuf>,
    /// Poll the file system instead of using native events; INTERVAL defaults to 500ms.
    #[arg(long, value_name = "INTERVAL", num_args = 0..=1, require_equals = true,
          default_missing_value = "500ms", value_parser = parse_poll_interval, help_heading = "Watching")]
    pub poll: Option<Duration>,
    /// Ignore paths matching this gitignore-style glob, on top of .gitignore; repeatable.
    #[arg(
        short = 'i',
        long = "ignore",
        value_name = "GLOB",
        help_heading = "Watching"
    )]
    pub ignore: Vec<String>,
    /// Wait for the first change instead of starting with a round for every member.
    #[arg(long, help_heading = "Watching")]
    pub postpone: bool,
}

#[derive(Debug, Clone, Args)]
pub struct TestArgs {
    #[command(flatten)]
    pub watch: WatchArgs,
    /// Run the tests with `cargo nextest run` (it must be installed).
    #[arg(long)]
    pub nextest: bool,
    /// Arguments for the test runner (after `--`).
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<OsString>,
}

#[derive(Debug, Clone, Args)]
pub struct CheckArgs {
    #[command(flatten)]
    pub watch: WatchArgs,
}

#[derive(Debug, Clone, Args)]
pub struct ClippyArgs {
    #[command(flatten)]
    pub watch: WatchArgs,
    /// Arguments for clippy (after `--`), e.g. `-D warnings`.
    #[arg(last = true, value_name = "ARGS")]
    pub args: Vec<OsString>,
}

#[derive(Debug, Clone, Args)]
pub struct InitArgs {
    /// Path to Cargo.toml (any manifest of the workspace).
    #[arg(long, value_name = "PATH")]
    pub manifest_path: Option<PathBuf>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        let args: Vec<OsString> = args.iter().map(OsString::from).collect();
        Cli::try_parse_from(normalize_args(args)).expect("parses")
    }

    #[test]
    fn run_is_the_default_subcommand() {
        let cli = parse(&["cargo-hot", "hot", "--bin", "server"]);
        assert!(cli.command.is_none());
        assert_eq!(cli.run.selection.bins, ["server"]);
    }

    #[test]
    fn direct_and_cargo_invocations_agree() {
        let via_cargo = parse(&["cargo-hot", "hot", "run", "-p", "api"]);
        let direct = parse(&["cargo-hot", "run", "-p", "api"]);
        for cli in [via_cargo, direct] {
            match cli.command {
                Some(Command::Run(run)) => assert_eq!(run.selection.packages, ["api"]),
                other => panic!("expected run, got {other:?}"),
            }
        }
    }

    #[test]
    fn trailing_args_go_to_targets() {
        let cli = parse(&["cargo-hot", "-p", "api", "--", "--port", "3000"]);
        assert_eq!(cli.run.args, ["--port", "3000"]);
    }

    #[test]
    fn poll_takes_an_optional_interval() {
        assert_eq!(
            parse(&["cargo-hot", "--poll"]).run.poll,
            Some(Duration::from_millis(500))
        );
        assert_eq!(
            parse(&["cargo-hot", "--poll=2s"]).run.poll,
            Some(Duration::from_secs(2))
        );
        assert_eq!(parse(&["cargo-hot"]).run.poll, None);
    }

    /// `--poll=0` busy-looped at 100% CPU; huge durations panicked later on.
    #[test]
    fn a_zero_poll_and_huge_durations_are_refused() {
        let error = |argv: &[&str]| {
            Cli::try_parse_from(normalize_args(argv.iter().map(OsString::from).collect()))
                .unwrap_err()
                .to_string()
        };
        for argv in [
            ["cargo-hot", "--poll=0"].as_slice(),
            ["cargo-hot", "test", "--poll=0ms"].as_slice(),
        ] {
            let message = error(argv);
            assert!(
                message.contains("the minimum is 10ms"),
                "{argv:?}: {message}"
            );
        }
        for flag in ["--debounce", "--stop-timeout", "--ready-timeout"] {
            let message = error(&["cargo-hot", flag, "9999999999999999999s"]);
            assert!(message.contains("longest duration"), "{flag}: {message}");
        }
    }

    #[test]
    fn proxy_flags() {
        let cli = parse(&[
            "cargo-hot",
            "--proxy",
            "web=:3000",
            "--proxy",
            "4000",
            "--proxy-wait",
            "5s",
            "--no-reload",
        ]);
        assert_eq!(cli.run.proxy, ["web=:3000", "4000"]);
        assert_eq!(cli.run.proxy_wait, Duration::from_secs(5));
        assert!(cli.run.no_reload);
        let defaults = parse(&["cargo-hot"]);
        assert_eq!(defaults.run.proxy_wait, Duration::from_secs(30));
        assert!(!defaults.run.no_reload);
    }

    #[test]
    fn restart_flags() {
        let cli = parse(&[
            "cargo-hot",
            "--listen",
            ":3000",
            "--listen",
            "api=unix:/tmp/a.sock",
            "--ready",
            "api=notify",
            "--ready-timeout",
            "5s",
            "--no-overlap",
        ]);
        assert_eq!(cli.run.listen, [":3000", "api=unix:/tmp/a.sock"]);
        assert_eq!(cli.run.ready, ["api=notify"]);
        assert_eq!(cli.run.ready_timeout, Duration::from_secs(5));
        assert!(cli.run.no_overlap);
        let defaults = parse(&["cargo-hot"]);
        assert_eq!(defaults.run.ready_timeout, Duration::from_secs(30));
        assert!(!defaults.run.no_overlap);
    }

    #[test]
    fn plain_and_stdin_parse() {
        let cli = parse(&["cargo-hot", "--plain", "--stdin", "api"]);
        assert!(cli.run.output.plain);
        assert_eq!(cli.run.stdin_target.as_deref(), Some("api"));
        let err = Cli::try_parse_from(["cargo-hot", "--plain", "--json"]).unwrap_err();
        assert!(err.to_string().contains("--json"), "{err}");
    }

    #[test]
    fn exclude_needs_workspace() {
        let err = Cli::try_parse_from(["cargo-hot", "--exclude", "api"]).unwrap_err();
        assert!(err.to_string().contains("--workspace"), "{err}");
    }

    #[test]
    fn affected_reads_paths() {
        match parse(&["cargo-hot", "affected", "--json", "core/src/lib.rs"]).command {
            Some(Command::Affected(a)) => {
                assert!(a.json);
                assert_eq!(a.paths, [PathBuf::from("core/src/lib.rs")]);
            }
            other => panic!("expected affected, got {other:?}"),
        }
    }

    #[test]
    fn watching_flags_parse() {
        let cli = parse(&[
            "cargo-hot",
            "-w",
            "../assets",
            "--watch",
            "config",
            "-i",
            "*.log",
            "--no-poll",
        ]);
        assert_eq!(
            cli.run.watch,
            [PathBuf::from("../assets"), PathBuf::from("config")]
        );
        assert_eq!(cli.run.ignore, ["*.log"]);
        assert!(cli.run.no_poll);
        let err = Cli::try_parse_from(["cargo-hot", "--poll", "--no-poll"]).unwrap_err();
        assert!(err.to_string().contains("--no-poll"), "{err}");
    }

    #[test]
    fn env_flags_parse() {
        let cli = parse(&[
            "cargo-hot",
            "-E",
            "A=1",
            "--env",
            "B=x=y",
            "-E",
            "C=",
            "--env-file",
            ".env",
        ]);
        assert_eq!(
            cli.run.env,
            [
                ("A".into(), "1".into()),
                ("B".into(), "x=y".into()),
                ("C".into(), String::new())
            ]
        );
        assert_eq!(cli.run.env_file, Some(PathBuf::from(".env")));
        for bad in ["NOVALUE", "=1"] {
            let err = Cli::try_parse_from(["cargo-hot", "-E", bad]).unwrap_err();
            assert!(err.to_string().contains("KEY=VALUE"), "{err}");
        }
    }

    #[test]
    fn output_flags_parse() {
        let cli = parse(&["cargo-hot", "-c", "-N", "--bell", "-q"]);
        let output = cli.run.output;
        assert!(output.clear && output.notify && output.bell && output.quiet);
    }

    #[test]
    fn cargo_flags_parse() {
        let cli = parse(&[
            "cargo-hot",
            "-j",
            "2",
            "--target",
            "x86_64-unknown-linux-gnu",
            "--ignore-rust-version",
            "--keep-going",
            "--bins",
            "--examples",
            "--config",
            "build.jobs=1",
            "--config",
            "net.offline=true",
            "--hot-config",
            "hot.toml",
        ]);
        let run = cli.run;
        assert_eq!(run.cargo.jobs.as_deref(), Some("2"));
        assert_eq!(
            run.cargo.target.as_deref(),
            Some("x86_64-unknown-linux-gnu")
        );
        assert!(run.cargo.ignore_rust_version && run.keep_going);
        assert!(run.selection.all_bins && run.selection.all_examples);
        assert_eq!(run.cargo.config, ["build.jobs=1", "net.offline=true"]);
        assert_eq!(run.hot_config, Some(PathBuf::from("hot.toml")));
        // cargo's -j -1: all CPUs but one.
        assert_eq!(
            parse(&["cargo-hot", "-j", "-1"]).run.cargo.jobs.as_deref(),
            Some("-1")
        );
    }

    #[test]
    fn selection_help_fits_run_and_affected() {
        use clap::CommandFactory;
        let help = Cli::command()
            .find_subcommand_mut("affected")
            .unwrap()
            .render_long_help()
            .to_string();
        assert!(!help.contains("Package to run"), "{help}");
        assert!(help.contains("Package to select"), "{help}");
    }

    #[test]
    fn clap_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
