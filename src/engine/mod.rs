//! The engine: one loop for every workload, around one core that decides.
//!
//! # Theory of operation
//!
//! **Inputs.** Everything that happens becomes an [`Input`]: raw file events from the
//! [`crate::watcher`], a settled burst of changes, lines and exits of cargo and of the
//! targets from [`crate::process`], a pid once a spawn worked, a readiness report, staged
//! executables, a hook that finished, a reloaded workspace, a key, a signal, a tick.
//!
//! **State.** The [`core::Core`] owns every decision-relevant piece of state: the burst being
//! settled, the one cargo command that runs and whether it is being cancelled, whether we are
//! quitting, and the workload's own: for `cargo hot run` ([`swap::Swap`]) the selected
//! targets, one [`crate::supervisor::Job`] per target, what past builds taught, the changes
//! since the last good build, the build running and the hooks to pass; for `cargo hot
//! test|check|clippy` ([`rounds::Rounds`]) the round running and the one to run next.
//!
//! **Actions.** [`core::Core::handle`] takes one input and the time, does no I/O (no spawn, no
//! file system, no cargo, no clock), and returns [`Action`]s: show an event, spawn cargo or a
//! target, signal a group, stage executables, run a hook, reload, update the watch set, exit.
//! Results of I/O come back as inputs, so a unit test replays recorded inputs and asserts the
//! actions ([`tests`]).
//!
//! **Threads.** The loop ([`driver::Driver`]) runs on the main thread: one `select!` over the
//! watcher, process events, signals, readiness reports, keys and results of work done off the
//! loop, with a timer only while a deadline exists (an idle `cargo hot` sleeps with no timeout,
//! at zero CPU). Other threads only feed channels: the watcher, one reader per child pipe, the
//! signal forwarder, readiness pollers and the notify socket, the key reader, and short-lived
//! threads for hooks and `cargo metadata`, so the loop always answers signals and deadlines.
//! Data flows one way: changes → affected targets → build → supervisor → ui.

pub mod core;
pub mod driver;
pub mod protocol;
pub mod rounds;
pub mod settle;
pub mod swap;
#[cfg(test)]
mod tests;

use std::time::Instant;

use anyhow::{bail, Context, Result};
use crossbeam_channel::never;

use self::core::{Core, Ctx, Workload};
use self::driver::{Channels, Driver, Loader};
pub use self::protocol::{Action, Input};
use self::protocol::{Reloaded, ReloadedConfig};
use self::swap::{watch_spec, Swap};
use crate::config::{OutputFormat, RunConfig, Verbosity};
use crate::event::{Event, ListeningSocket, ProxyAddress};
use crate::process::Reaper;
use crate::proxy::{self, Proxy};
use crate::ready;
use crate::sockets::Sockets;
use crate::staging::StagingDir;
use crate::ui::Ui;
use crate::watcher::{WatchMode, Watcher};
use crate::workspace::{self, Workspace};

/// Runs `cargo hot run` until a signal asks it to stop. Returns the process exit code.
pub fn run(mut config: RunConfig) -> Result<i32> {
    let metadata = config.cargo.metadata_request(&config.cwd);
    let workspace = workspace::load(&metadata)?;
    let targets = config.apply_workspace(&workspace)?;
    // After the configuration is read: its `clear` key decides how the UI starts.
    let mut ui = Ui::new(config.output);
    if let Some(name) = &config.stdin_target {
        if !targets.iter().any(|t| &t.name == name) {
            let selected: Vec<String> = targets.iter().map(ToString::to_string).collect();
            bail!(
                "--stdin {name}: `{name}` is not one of the selected targets ({}); pass one of them, or select `{name}` with --bin/-p",
                selected.join(", ")
            );
        }
    }
    ui.set_root(workspace.root().to_path_buf());
    // Bound before anything starts, so a taken port fails the run at once, and held until
    // cargo hot exits: the sockets outlive every restart.
    let sockets = Sockets::bind(&config.listen)?;
    config.check_restart_flags(&targets, &sockets)?;
    let (proxy_tx, proxy_rx) = crossbeam_channel::unbounded();
    let proxy = if config.proxy.is_empty() {
        None
    } else {
        let options = proxy::Options {
            wait: config.proxy_wait,
            reload: config.reload,
            ..proxy::Options::default()
        };
        Some(Proxy::bind(&config.proxy, options, proxy_tx)?)
    };

    let (signal_tx, signal_rx) = crossbeam_channel::unbounded();
    let _signals = crate::process::forward_signals(signal_tx)?;
    let (proc_tx, proc_rx) = crossbeam_channel::unbounded();
    let (watch_tx, watch_rx) = crossbeam_channel::unbounded();
    let (ready_tx, ready_rx) = crossbeam_channel::unbounded();
    let wants_notify = config.wants_notify(&targets);
    let notify = if wants_notify {
        Some(
            ready::NotifySocket::start(ready_tx.clone())
                .context("failed to start the notify socket")?,
        )
    } else if !sockets.all().is_empty() {
        // Targets handed sockets may report `READY=1` to end their grace early; without a
        // notify socket (Windows) the grace alone decides.
        ready::NotifySocket::start(ready_tx.clone()).ok()
    } else {
        None
    };
    let reaper = Reaper::start().context("failed to start the process reaper")?;
    let watcher = Watcher::start(config.watch_spec(&workspace), watch_tx)
        .context("failed to start watching files")?;

    let staging = StagingDir::claim(workspace.target_dir(), &config.cargo)?;
    let several = targets.len() > 1;
    let loader_config = config.clone();
    let loader: Loader = Box::new(move || {
        let request = loader_config.cargo.metadata_request(&loader_config.cwd);
        let workspace = workspace::load(&request)?;
        // The configuration is re-read with the manifests; a broken one changes nothing.
        let mut config = loader_config.clone();
        let targets = config.apply_workspace(&workspace).map_err(|error| {
            error.context("the last good configuration, workspace graph and targets stay in force; fix it and save again")
        })?;
        Ok(Reloaded {
            workspace,
            config: ReloadedConfig::Run {
                config: Box::new(config),
                targets,
            },
        })
    });
    let manifests = manifests(&workspace);
    let listen_specs = sockets.all().iter().map(|s| s.spec.clone()).collect();
    let mut driver = Driver::new(
        ui, watcher, reaper, proc_tx, ready_tx, loader, staging, sockets,
    );
    driver.notify = notify;
    driver.proxy = proxy;
    driver.inherit_output = !several && config.output.format == OutputFormat::Human;
    driver.stdin_target = config.stdin_target.clone();
    driver.manifests = manifests;

    let verbose = config.output.verbosity == Verbosity::Verbose;
    let mut cx = Ctx::new(workspace, config.debounce, verbose);
    let mut swap = Swap::new(config, targets, listen_specs, wants_notify, &mut cx);
    announce_watching(&mut driver, &cx.workspace, swap.targets());
    announce_sockets(&mut driver, swap.targets());
    announce_proxies(&mut driver);
    swap.start(&mut cx, Instant::now());
    let channels = Channels {
        watch: watch_rx,
        procs: proc_rx,
        signals: signal_rx,
        ready: ready_rx,
        keys: never(),
        proxy: proxy_rx,
    };
    serve(&mut driver, Core::new(cx, swap), channels)
}

/// Runs `cargo hot test|check|clippy` until a signal stops it. Returns the exit code.
pub fn run_rounds(options: crate::rounds::Options) -> Result<i32> {
    if options.tool == (crate::rounds::Tool::Test { nextest: true }) {
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
    let mut ui = Ui::new(options.output);
    let request = options.cargo.metadata_request(&options.cwd);
    let workspace = workspace::load(&request)?;
    options.members.check(&workspace)?;
    let hot = crate::config::load_hot(&workspace, options.config_file.as_deref())?;
    ui.set_root(workspace.root().to_path_buf());
    let ignore = crate::config::watch_ignores(&hot, &workspace, &options.ignore);
    let poll = options.poll.or(hot.poll.flatten());
    let debounce = options.debounce_with(hot.debounce);

    let (signal_tx, signal_rx) = crossbeam_channel::unbounded();
    let _signals = crate::process::forward_signals(signal_tx)?;
    let (proc_tx, proc_rx) = crossbeam_channel::unbounded();
    let (watch_tx, watch_rx) = crossbeam_channel::unbounded();
    let (ready_tx, ready_rx) = crossbeam_channel::unbounded();
    let reaper = Reaper::start().context("failed to start the process reaper")?;
    let watcher = Watcher::start(watch_spec(&workspace, &ignore, poll), watch_tx)
        .context("failed to start watching files")?;
    let loader_options = options.clone();
    let loader: Loader = Box::new(move || {
        let request = loader_options.cargo.metadata_request(&loader_options.cwd);
        let workspace = workspace::load(&request)?;
        let hot = crate::config::load_hot(&workspace, loader_options.config_file.as_deref())
            .context("the last good configuration stays in force; fix it and save again")?;
        Ok(Reloaded {
            workspace,
            config: ReloadedConfig::Rounds { hot: Box::new(hot) },
        })
    });
    let staging = StagingDir::claim(workspace.target_dir(), &options.cargo)?;
    let mut driver = Driver::new(
        ui,
        watcher,
        reaper,
        proc_tx,
        ready_tx,
        loader,
        staging,
        Sockets::default(),
    );
    announce_watching(&mut driver, &workspace, &[]);
    let verbose = options.output.verbosity == Verbosity::Verbose;
    let mut cx = Ctx::new(workspace, debounce, verbose);
    let mut rounds = self::rounds::Rounds::new(options, ignore);
    rounds.start(&mut cx, Instant::now());
    let channels = Channels {
        watch: watch_rx,
        procs: proc_rx,
        signals: signal_rx,
        ready: ready_rx,
        keys: never(),
        proxy: never(),
    };
    serve(&mut driver, Core::new(cx, rounds), channels)
}

/// Hands the session to the loop: the core's first decisions (what `start` queued), then
/// every input until it says to exit. Keys are read only from here on, once the terminal is
/// the UI's.
fn serve<W: Workload>(
    driver: &mut Driver,
    mut core: Core<W>,
    mut channels: Channels,
) -> Result<i32> {
    let first = core.handle(Input::Tick, Instant::now());
    channels.keys = driver.ui.keys()?.unwrap_or_else(never);
    driver.run(&mut core, first, channels)
}

/// Package name → (directory, version), for the CARGO_* variables `cargo run` sets.
fn manifests(
    workspace: &Workspace,
) -> std::collections::HashMap<String, (std::path::PathBuf, String)> {
    workspace
        .packages()
        .iter()
        .map(|p| (p.name.clone(), (p.dir.clone(), p.version.clone())))
        .collect()
}

fn announce_watching(driver: &mut Driver, workspace: &Workspace, targets: &[workspace::TargetId]) {
    let event = Event::Watching {
        root: workspace.root().to_path_buf(),
        dirs: driver.watcher.watched_dirs(),
        mode: match driver.watcher.mode() {
            WatchMode::Native => "native".into(),
            WatchMode::Poll(every) => format!("polling every {}ms", every.as_millis()),
        },
        targets: targets.iter().map(ToString::to_string).collect(),
    };
    driver.ui.emit(&event);
}

fn announce_sockets(driver: &mut Driver, targets: &[workspace::TargetId]) {
    let sockets: Vec<ListeningSocket> = driver
        .sockets
        .all()
        .iter()
        .map(|socket| ListeningSocket {
            address: socket.local.to_string(),
            name: socket.fd_name(),
            targets: targets
                .iter()
                .filter(|t| socket.spec.applies_to(t))
                .map(ToString::to_string)
                .collect(),
        })
        .collect();
    if !sockets.is_empty() {
        driver.ui.emit(&Event::Listening { sockets });
    }
}

fn announce_proxies(driver: &mut Driver) {
    let Some(proxy) = &driver.proxy else {
        return;
    };
    let proxies = proxy
        .bindings()
        .iter()
        .map(|b| ProxyAddress {
            address: b.addr.to_string(),
            target: b.target.clone(),
        })
        .collect();
    driver.ui.emit(&Event::Proxying { proxies });
}
