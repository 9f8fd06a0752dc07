//! How cargo is invoked: the flags every `cargo metadata`, `cargo build` and round share, and
//! the check that `--config` (cargo's own) was not handed cargo hot's configuration file.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::{bail, Result};

use super::{file, Env};
use crate::cli::CargoArgs;
use crate::workspace::MetadataRequest;

/// How cargo is invoked: shared by `cargo metadata` and `cargo build`.
#[derive(Debug, Clone, Default)]
pub struct CargoOptions {
    /// The cargo that called us (`$CARGO`), so `cargo +nightly hot` builds with nightly.
    pub program: PathBuf,
    pub release: bool,
    pub profile: Option<String>,
    pub features: Vec<String>,
    pub all_features: bool,
    pub no_default_features: bool,
    pub target_dir: Option<PathBuf>,
    pub manifest_path: Option<PathBuf>,
    pub locked: bool,
    pub offline: bool,
    pub frozen: bool,
    pub verbose: u8,
    /// Whether cargo's rendered diagnostics should carry colour (its stderr is a pipe to us).
    pub color: bool,
    /// `-j N`, as given (cargo also takes a negative number and `default`).
    pub jobs: Option<String>,
    /// `--target TRIPLE`: cargo then puts executables under `target/TRIPLE/`, and its
    /// artifact messages say where.
    pub target: Option<String>,
    pub ignore_rust_version: bool,
    /// cargo's own `--config KEY=VALUE|PATH`, in order.
    pub config: Vec<String>,
    /// `--keep-going`: only `cargo build` takes it (not `cargo test`), so only
    /// [`crate::build::command`] passes it.
    pub keep_going: bool,
}

impl CargoOptions {
    pub fn resolve(args: &CargoArgs, verbose: u8, color: bool, env: &Env) -> CargoOptions {
        CargoOptions {
            program: env
                .cargo
                .as_ref()
                .map_or_else(|| PathBuf::from("cargo"), PathBuf::from),
            release: args.release,
            profile: args.profile.clone(),
            features: args.features.clone(),
            all_features: args.all_features,
            no_default_features: args.no_default_features,
            target_dir: args.target_dir.clone(),
            manifest_path: args.manifest_path.clone(),
            locked: args.locked,
            offline: args.offline,
            frozen: args.frozen,
            verbose,
            color,
            jobs: args.jobs.clone(),
            target: args.target.clone(),
            ignore_rust_version: args.ignore_rust_version,
            config: args.config.clone(),
            keep_going: false,
        }
    }

    /// See [`RunConfig::selection_dir`].
    pub fn selection_dir(&self, cwd: &Path) -> PathBuf {
        match &self.manifest_path {
            Some(manifest) => cwd
                .join(manifest)
                .parent()
                .map_or_else(|| cwd.to_path_buf(), Path::to_path_buf),
            None => cwd.to_path_buf(),
        }
    }

    pub fn metadata_request(&self, cwd: &Path) -> MetadataRequest {
        MetadataRequest {
            cargo: self.program.clone(),
            manifest_path: self.manifest_path.clone(),
            features: self.features.clone(),
            all_features: self.all_features,
            no_default_features: self.no_default_features,
            locked: self.locked,
            offline: self.offline,
            frozen: self.frozen,
            cwd: cwd.to_path_buf(),
            target_dir: self.target_dir.as_ref().map(|d| cwd.join(d)),
            config: self.config.clone(),
        }
    }

    /// The flags every cargo command shares (features, profile, lock and network policy).
    pub fn common_args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = Vec::new();
        if let Some(path) = &self.manifest_path {
            args.push("--manifest-path".into());
            args.push(path.into());
        }
        if self.release {
            args.push("--release".into());
        }
        if let Some(profile) = &self.profile {
            args.push("--profile".into());
            args.push(profile.into());
        }
        for features in &self.features {
            args.push("--features".into());
            args.push(features.into());
        }
        for (on, flag) in [
            (self.all_features, "--all-features"),
            (self.no_default_features, "--no-default-features"),
            (self.locked, "--locked"),
            (self.offline, "--offline"),
            (self.frozen, "--frozen"),
        ] {
            if on {
                args.push(flag.into());
            }
        }
        if let Some(dir) = &self.target_dir {
            args.push("--target-dir".into());
            args.push(dir.into());
        }
        if let Some(jobs) = &self.jobs {
            args.push("--jobs".into());
            args.push(jobs.into());
        }
        if let Some(target) = &self.target {
            args.push("--target".into());
            args.push(target.into());
        }
        if self.ignore_rust_version {
            args.push("--ignore-rust-version".into());
        }
        for config in &self.config {
            args.push("--config".into());
            args.push(config.into());
        }
        for _ in 0..self.verbose {
            args.push("-v".into());
        }
        args
    }
}

/// `--config` goes to cargo now; a file written for cargo hot's own configuration (what
/// `--config` meant before `--hot-config`) would be read by cargo as nonsense, so it is
/// refused with the flag to use instead.
pub fn check_cargo_config(values: &[String], cwd: &Path) -> Result<()> {
    for value in values {
        let path = cwd.join(value);
        if value.contains('=') && !path.is_file() {
            continue;
        }
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(table) = toml::from_str::<toml::Table>(&text) else {
            continue;
        };
        let ours: Vec<&str> = table
            .keys()
            .filter(|k| file::TOP_KEYS.contains(&k.as_str()))
            .map(String::as_str)
            .collect();
        if !ours.is_empty() {
            bail!(
                "--config {value}: `--config` passes cargo's own configuration to cargo, but {} holds cargo hot's keys ({}); to read it as cargo hot's configuration, use --hot-config {value}",
                path.display(),
                ours.join(", ")
            );
        }
    }
    Ok(())
}
