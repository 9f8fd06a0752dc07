//! The other tools a user could run instead of cargo hot, driven on the same fixture in the
//! same run: each is started with its usual command for "rebuild and restart this server",
//! with its own defaults. A tool that is not on PATH is reported and skipped; the bench
//! never needs one.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::hot::cargo_program;

/// One peer: its name, the program that must be on PATH, and its command line.
#[derive(Clone)]
pub struct Peer {
    pub name: &'static str,
    pub program: &'static str,
    /// The arguments for a server on `port`, with `features` (`--features …`) when set.
    args: fn(port: u16, features: &[&str]) -> Vec<String>,
}

/// `cargo run -p api [FEATURES] -- --port PORT`, the command every peer restarts.
fn cargo_run(port: u16, features: &[&str]) -> Vec<String> {
    let mut args = vec!["run".to_string(), "-p".into(), "api".into()];
    args.extend(features.iter().map(|f| f.to_string()));
    args.extend(["--".into(), "--port".into(), port.to_string()]);
    args
}

pub fn all() -> Vec<Peer> {
    vec![
        Peer {
            name: "watchexec",
            program: "watchexec",
            // Watch the sources, not target/; restart the running server on a change.
            args: |port, features| {
                let mut args: Vec<String> = [
                    "--restart",
                    "--watch",
                    "core",
                    "--watch",
                    "api",
                    "--",
                    "cargo",
                ]
                .map(String::from)
                .to_vec();
                args.extend(cargo_run(port, features));
                args
            },
        },
        Peer {
            name: "cargo-watch",
            program: "cargo-watch",
            // cargo watch restarts the command by default (it kills the running one).
            args: |port, features| {
                vec![
                    "watch".into(),
                    "--watch".into(),
                    "core".into(),
                    "--watch".into(),
                    "api".into(),
                    "--exec".into(),
                    cargo_run(port, features).join(" "),
                ]
            },
        },
        Peer {
            name: "bacon",
            program: "bacon",
            // The `run-long` job (kill then restart on change), without its TUI.
            args: |port, features| {
                let mut args: Vec<String> =
                    ["--headless", "run-long", "--"].map(String::from).to_vec();
                args.extend(cargo_run(port, features).into_iter().skip(1));
                args
            },
        },
    ]
}

impl Peer {
    pub fn installed(&self) -> bool {
        on_path(self.program)
    }

    /// The command line, for the table (`PORT` stands for each run's free port).
    pub fn command_line(&self, features: &[&str]) -> String {
        let program = if self.program == "cargo-watch" {
            "cargo".to_string()
        } else {
            self.program.to_string()
        };
        let args: Vec<String> = (self.args)(0, features)
            .into_iter()
            .map(|a| a.replace("--port 0", "--port PORT"))
            .map(|a| if a == "0" { "PORT".to_string() } else { a })
            .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
            .collect();
        format!("{program} {}", args.join(" "))
    }

    /// Starts the peer in `dir`, in its own process group (so stopping it takes the cargo and
    /// the server it started along).
    pub fn start(&self, dir: &Path, port: u16, features: &[&str]) -> Result<Running> {
        use std::os::unix::process::CommandExt;
        let mut cmd = if self.program == "cargo-watch" {
            Command::new(cargo_program())
        } else {
            Command::new(self.program)
        };
        cmd.args((self.args)(port, features))
            .current_dir(dir)
            .env_remove("CARGO_TARGET_DIR")
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .env("CARGO", cargo_program())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("failed to start {}", self.name))?;
        Ok(Running { child })
    }
}

/// A running peer and everything it started.
pub struct Running {
    child: Child,
}

impl Running {
    /// SIGTERM to the whole group, then SIGKILL to what is left.
    pub fn stop(mut self) {
        let group = self.child.id() as i32;
        // SAFETY: kill(2) on the process group this bench created.
        unsafe { libc::kill(-group, libc::SIGTERM) };
        for _ in 0..200 {
            if matches!(self.child.try_wait(), Ok(Some(_))) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // SAFETY: as above; the group may hold the server even after the peer exited.
        unsafe { libc::kill(-group, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the process group this bench created (error paths only).
        unsafe { libc::kill(-(self.child.id() as i32), libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

pub fn on_path(program: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(program).is_file()))
}
