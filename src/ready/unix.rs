//! `NOTIFY_SOCKET` on unix: Unix datagram sockets in a private directory under the temp dir,
//! removed when cargo hot exits (and by the next run, if cargo hot was SIGKILLed). Filesystem
//! paths rather than abstract names, because not every sd_notify client understands `@names`.
//!
//! Each run of a target gets a socket of its own ([`NotifySocket::path_for`]): a message names
//! its sender by the socket it arrives on, which needs no credentials. That is what macOS
//! needs, since its datagram sockets carry no `SO_PASSCRED`; the directory is private
//! (`0700`), so only our own user can write to it. The shared socket with `SO_PASSCRED`
//! ([`NotifySocket::path`], Linux only) is what the current engine still uses.

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
    #[cfg(target_os = "linux")]
    shared: PathBuf,
}

/// One run's socket; its thread stops once `stop` is set and it is woken.
struct RunSocket {
    path: PathBuf,
    stop: Arc<AtomicBool>,
}

impl NotifySocket {
    /// Creates the private directory (on Linux also the shared socket and its thread).
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
        #[cfg(target_os = "linux")]
        let shared = match shared::start(&dir, tx.clone()) {
            Ok(path) => path,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        Ok(NotifySocket {
            dir,
            tx,
            runs: HashMap::new(),
            #[cfg(target_os = "linux")]
            shared,
        })
    }

    /// The shared socket, whose messages are attributed by the sender's pid
    /// ([`ReadyMsg::Notified`]).
    #[cfg(target_os = "linux")]
    pub fn path(&self) -> &Path {
        &self.shared
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

/// The shared socket with `SO_PASSCRED`, as systemd does it: the kernel tells which process
/// sent each message.
#[cfg(target_os = "linux")]
mod shared {
    use std::os::fd::AsRawFd;
    use std::os::unix::net::UnixDatagram;
    use std::path::{Path, PathBuf};

    use anyhow::{Context, Result};
    use crossbeam_channel::Sender;

    use super::{is_ready, ReadyMsg};

    pub(super) fn start(dir: &Path, tx: Sender<ReadyMsg>) -> Result<PathBuf> {
        let path = dir.join("notify");
        let socket = UnixDatagram::bind(&path)
            .with_context(|| format!("failed to bind the notify socket {}", path.display()))?;
        pass_credentials(&socket)?;
        std::thread::Builder::new()
            .name("hot-notify".into())
            .spawn(move || {
                let mut buf = vec![0u8; 4096];
                while let Ok((len, pid)) = recv_with_pid(&socket, &mut buf) {
                    if is_ready(&buf[..len]) && tx.send(ReadyMsg::Notified { pid }).is_err() {
                        return;
                    }
                }
            })
            .context("failed to start the notify thread")?;
        Ok(path)
    }

    fn pass_credentials(socket: &UnixDatagram) -> Result<()> {
        let on: libc::c_int = 1;
        // SAFETY: setsockopt with a pointer to a live c_int of the size we pass.
        let ret = unsafe {
            libc::setsockopt(
                socket.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_PASSCRED,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            )
        };
        if ret != 0 {
            return Err(std::io::Error::last_os_error()).context("failed to set SO_PASSCRED");
        }
        Ok(())
    }

    /// Receives one datagram and the sender's pid from its `SCM_CREDENTIALS` (the kernel fills
    /// them in for every sender once `SO_PASSCRED` is set; pid 0 if absent).
    fn recv_with_pid(socket: &UnixDatagram, buf: &mut [u8]) -> std::io::Result<(usize, u32)> {
        // Room for one ucred control message, aligned as cmsghdr requires.
        let mut control = [0u64; 8];
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        // SAFETY: zeroed msghdr is valid; the pointers below outlive the call.
        let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&control) as _;
        let len = loop {
            // SAFETY: recvmsg with a msghdr whose buffers are live and correctly sized.
            let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, 0) };
            if n >= 0 {
                break n as usize;
            }
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                return Err(err);
            }
        };
        let mut pid = 0;
        // SAFETY: walking the control buffer the kernel just filled, with libc's own macros.
        unsafe {
            let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
            while !cmsg.is_null() {
                if (*cmsg).cmsg_level == libc::SOL_SOCKET
                    && (*cmsg).cmsg_type == libc::SCM_CREDENTIALS
                {
                    let cred: libc::ucred = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast());
                    pid = cred.pid as u32;
                }
                cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
            }
        }
        Ok((len, pid))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const WAIT: Duration = Duration::from_secs(10);

    #[cfg(target_os = "linux")]
    #[test]
    fn notify_reports_the_sender_pid() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let socket = NotifySocket::start(tx).unwrap();
        let path = socket.path().to_path_buf();
        let client = UnixDatagram::unbound().unwrap();
        client.send_to(b"STATUS=warming up\n", &path).unwrap();
        client.send_to(b"STATUS=done\nREADY=1\n", &path).unwrap();
        assert_eq!(
            rx.recv_timeout(WAIT).unwrap(),
            ReadyMsg::Notified {
                pid: std::process::id()
            }
        );
        let dir = path.parent().unwrap().to_path_buf();
        drop(socket);
        assert!(!dir.exists());
    }

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
