//! The events the engine reports: the one vocabulary shared by every renderer (plain lines,
//! the live view, JSON). Variants are named after what happened, never after how it is shown.

use std::path::PathBuf;

use serde::Serialize;

/// Bumped whenever a field is removed or changes meaning (adding fields does not bump it).
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// Watching began (or the watch set changed after a metadata reload).
    Watching {
        #[serde(serialize_with = "crate::lossy::path")]
        root: PathBuf,
        dirs: usize,
        mode: String,
        targets: Vec<String>,
    },
    /// One raw file event (only with -v).
    FileEvent {
        #[serde(serialize_with = "crate::lossy::path")]
        path: PathBuf,
        kind: String,
    },
    /// A settled burst of file changes.
    Change {
        #[serde(serialize_with = "crate::lossy::paths")]
        paths: Vec<PathBuf>,
        count: usize,
    },
    /// What the change affects, with the reason for each target.
    Affected {
        targets: Vec<AffectedTarget>,
        packages: Vec<String>,
        #[serde(serialize_with = "crate::lossy::paths")]
        unowned: Vec<PathBuf>,
    },
    /// The workspace graph was (re)loaded.
    MetadataReloaded {
        packages: usize,
    },
    BuildStarted {
        targets: Vec<String>,
        command: String,
    },
    BuildProgress {
        unit: String,
        fresh: bool,
        done: usize,
    },
    /// A build was stopped because a newer change arrived or we are quitting.
    BuildCancelled {
        targets: Vec<String>,
    },
    BuildFinished {
        ok: bool,
        duration_ms: u128,
        targets: Vec<String>,
        /// Targets whose executable changed and will be (re)started.
        rebuilt: Vec<String>,
        /// Targets cargo found fresh, or whose new executable is byte-identical.
        fresh: Vec<String>,
    },
    /// The sockets cargo hot holds for the whole run (`--listen`).
    Listening {
        sockets: Vec<ListeningSocket>,
    },
    /// The `--proxy` addresses cargo hot serves for the whole run.
    Proxying {
        proxies: Vec<ProxyAddress>,
    },
    Started {
        target: String,
        pid: u32,
        #[serde(serialize_with = "crate::lossy::path")]
        executable: PathBuf,
    },
    /// The process passed its readiness check (at once for targets without one); it serves
    /// now, and the process it replaces is asked to stop.
    Ready {
        target: String,
        pid: u32,
        /// Time from its start.
        after_ms: u128,
    },
    /// A new process exited or was not ready in time: it is stopped, and the process that
    /// served before (if any) keeps serving.
    StartFailed {
        target: String,
        pid: u32,
        reason: String,
        still_serving: Option<u32>,
    },
    Stopping {
        target: String,
        pid: u32,
        signal: String,
        reason: String,
    },
    /// A stop timed out and the process group was killed.
    Killed {
        target: String,
        pid: u32,
    },
    Exited {
        target: String,
        pid: u32,
        code: Option<i32>,
        signal: Option<i32>,
        /// We asked it to stop; false means it exited (or crashed) on its own.
        expected: bool,
    },
    /// A build script's `rerun-if-changed` path is watched on its own, because the
    /// directory walk never sees it (`.git/HEAD`, a file in an ignored directory).
    BuildScriptWatch {
        package: String,
        #[serde(serialize_with = "crate::lossy::path")]
        path: PathBuf,
    },
    Warning {
        message: String,
    },
    Error {
        message: String,
    },
    /// `cargo hot test|check|clippy`: a round began, running these cargo commands.
    RoundStarted {
        tool: String,
        packages: Vec<String>,
        commands: Vec<String>,
    },
    /// A newer change arrived: the round stops; the next one covers both.
    RoundCancelled {
        packages: Vec<String>,
    },
    /// A round ended: how each package did, and the totals.
    RoundFinished {
        tool: String,
        ok: bool,
        duration_ms: u128,
        packages: Vec<PackageOutcome>,
        passed: usize,
        failed: usize,
        /// Failed tests by name.
        failures: Vec<String>,
        errors: usize,
        warnings: usize,
        /// The round in one line, as printed.
        summary: String,
    },
    /// cargo hot is exiting.
    Quit {
        reason: String,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct ListeningSocket {
    /// The bound address (`127.0.0.1:3000`, `unix:/run/api.sock`).
    pub address: String,
    /// Its name in `LISTEN_FDNAMES`.
    pub name: String,
    /// The targets that get it.
    pub targets: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ProxyAddress {
    /// The address served (`127.0.0.1:3000`).
    pub address: String,
    /// The target whose runs answer there.
    pub target: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct AffectedTarget {
    pub target: String,
    pub reason: crate::workspace::Reason,
    /// The reason as one readable phrase, e.g. `core → web → api`.
    pub why: String,
}

/// How one package did in a round of `cargo hot test|check|clippy`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct PackageOutcome {
    pub package: String,
    pub ok: bool,
    pub passed: usize,
    pub failed: usize,
    pub errors: usize,
    pub warnings: usize,
}
