//! `NOTIFY_SOCKET` on unix: Unix datagram sockets in a private directory under the temp dir,
//! removed when cargo hot exits (and by the next run, if cargo hot was SIGKILLed). Filesystem
//! paths rather than abstract names, because not every sd_notify client understands `@names`.
//!
//! Each run of a target gets a socket of its own ([`NotifySocket::path_for`]): a message names
//! its sender by the socket it arrives on, which needs no credentials. That is what macOS
//! needs, since its datagram sockets carry no `SO_PASSCRED`, and Linux does the same, so both
//! share one path through the code. The directory is private (`0700`), so only our own user
//! can write to it; a process the target started inherits `NOTIFY_SOCKET` and speaks for it,
//! as under systemd with `NotifyAccess=all`.

use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::{Context, Result};
use crossbeam_channel::Sender;

use super::ReadyMsg;
use crate::process::ProcKey;

const NOTIFY_DIR_PREFIX: &str = "cargo-hot-notify-";

/// `ready = notify` works on every unix.
pub(super) fn notify_supported() -> Result<()> {
    Ok(())
}

/// The notify sockets of this cargo hot: one directory, one socket per target run.
pub struct NotifySocket {
    dir: PathBuf,
    tx: Sender<ReadyMsg>,
    runs: HashMap<ProcKey, RunSocket>,
}

/// One run's socket; its thread stops once `stop` is set and it is woken.
struct RunSocket {
    path: PathBuf,
    stop: Arc<AtomicBool>,
}

impl NotifySocket {
    /// Creates the private directory; the sockets come with each run.
    pub fn start(tx: Sender<ReadyMsg>) -> Result<NotifySocket> {
        use std::os::unix::fs::DirBuilderExt;

        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let temp = std::env::temp_dir();
        remove_stale_notify_dirs(&temp);
        let dir = temp.join(format!(
            "{NOTIFY_DIR_PREFIX}{}-{stamp:x}",
            std::process::id()
        ));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&dir)
            .with_context(|| format!("failed to create {}", dir.display()))?;
        Ok(NotifySocket {
            dir,
            tx,
            runs: HashMap::new(),
        })
    }

    /// Binds the socket of the run `key` and returns its path, for that run's `NOTIFY_SOCKET`.
    /// `READY=1` on it becomes [`ReadyMsg::Probed`] with `key`.
    pub fn path_for(&mut self, key: ProcKey) -> Result<PathBuf> {
        self.forget(key);
        let path = self.dir.join(key.to_string());
        let socket = UnixDatagram::bind(&path)
            .with_context(|| format!("failed to bind the notify socket {}", path.display()))?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let tx = self.tx.clone();
        let started = std::thread::Builder::new()
            .name(format!("hot-notify-{key}"))
            .spawn(move || {
                let mut buf = vec![0u8; 4096];
                while let Ok(len) = socket.recv(&mut buf) {
                    if stopped.load(Ordering::Relaxed) {
                        return;
                    }
                    if is_ready(&buf[..len]) && tx.send(ReadyMsg::Probed(key)).is_err() {
                        return;
                    }
                }
            });
        if let Err(e) = started {
            let _ = std::fs::remove_file(&path);
            return Err(e).context("failed to start a notify thread");
        }
        self.runs.insert(
            key,
            RunSocket {
                path: path.clone(),
                stop,
            },
        );
        Ok(path)
    }

    /// The run `key` is gone: close its socket (its thread ends) and remove the file.
    pub fn forget(&mut self, key: ProcKey) {
        if let Some(run) = self.runs.remove(&key) {
            run.close();
        }
    }
}

impl RunSocket {
    fn close(self) {
        self.stop.store(true, Ordering::Relaxed);
        // The thread blocks in recv: an empty datagram wakes it to see `stop`.
        if let Ok(waker) = UnixDatagram::unbound() {
            let _ = waker.send_to(b"", &self.path);
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        for (_, run) in self.runs.drain() {
            run.close();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Whether an sd_notify message says `READY=1` (one `KEY=VALUE` per line).
fn is_ready(message: &[u8]) -> bool {
    String::from_utf8_lossy(message)
        .lines()
        .any(|l| l.trim() == "READY=1")
}

/// A cargo hot that was SIGKILLed could not remove its notify directory; the next run does,
/// for every directory of ours whose process is gone.
fn remove_stale_notify_dirs(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(NOTIFY_DIR_PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|pid| pid.parse::<libc::pid_t>().ok())
            .filter(|pid| *pid > 0)
        else {
            continue;
        };
        // SAFETY: kill with signal 0 only asks whether the process exists.
        let gone = unsafe { libc::kill(pid, 0) } != 0
            && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH);
        if gone {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const WAIT: Duration = Duration::from_secs(10);

    #[test]
    fn each_run_is_named_by_its_own_socket() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut notify = NotifySocket::start(tx).unwrap();
        let first = notify.path_for(1).unwrap();
        let second = notify.path_for(2).unwrap();
        assert_ne!(first, second);
        let client = UnixDatagram::unbound().unwrap();
        client.send_to(b"STATUS=warming up\n", &second).unwrap();
        client.send_to(b"READY=1\n", &second).unwrap();
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), ReadyMsg::Probed(2));
        client.send_to(b"MAINPID=1\nREADY=1", &first).unwrap();
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), ReadyMsg::Probed(1));

        // A forgotten run's socket is gone; the others stay.
        notify.forget(1);
        assert!(!first.exists());
        assert!(client.send_to(b"READY=1\n", &first).is_err());
        client.send_to(b"READY=1\n", &second).unwrap();
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), ReadyMsg::Probed(2));

        let dir = second.parent().unwrap().to_path_buf();
        drop(notify);
        assert!(!dir.exists());
    }

    #[test]
    fn stale_notify_dirs_of_dead_processes_are_removed() {
        let temp = tempfile::tempdir().unwrap();
        // A pid that cannot exist (above Linux's pid_max of 2^22 and macOS's 99999) and ours.
        let dead = temp.path().join(format!("{NOTIFY_DIR_PREFIX}4194305-1a"));
        let alive = temp
            .path()
            .join(format!("{NOTIFY_DIR_PREFIX}{}-2b", std::process::id()));
        let other = temp.path().join("cargo-hot-notify-notes");
        for dir in [&dead, &alive, &other] {
            std::fs::create_dir(dir).unwrap();
        }
        std::fs::write(dead.join("notify"), "").unwrap();
        remove_stale_notify_dirs(temp.path());
        assert!(!dead.exists());
        assert!(alive.exists() && other.exists());
    }
}
