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
    /// Held for the life of the run: the kernel releases it however cargo hot dies.
    _lock: std::fs::File,
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
        let name = format!("{}-{stamp:x}", std::process::id());
        // Set up under a name the cleanup ignores, then renamed into place: a directory with
        // our prefix always has its lock held by a live cargo hot, or is stale.
        let draft = temp.join(format!(".{NOTIFY_DIR_PREFIX}{name}"));
        let dir = temp.join(format!("{NOTIFY_DIR_PREFIX}{name}"));
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&draft)
            .with_context(|| format!("failed to create {}", draft.display()))?;
        let lock = hold_lock(&draft.join(NOTIFY_LOCK))?;
        std::fs::rename(&draft, &dir).with_context(|| {
            format!("failed to rename {} to {}", draft.display(), dir.display())
        })?;
        Ok(NotifySocket {
            dir,
            tx,
            runs: HashMap::new(),
            _lock: lock,
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
                let mut buf = vec![0u8; NOTIFY_BUFFER];
                while let Ok(got) = recv_datagram(&socket, &mut buf) {
                    if stopped.load(Ordering::Relaxed) {
                        return;
                    }
                    if got.closed_fds > 0 {
                        let what = format!(
                            "{} file descriptor(s) sent to the notify socket were closed: cargo hot has no fd store (FDSTORE=1)",
                            got.closed_fds
                        );
                        let _ = tx.send(ReadyMsg::Ignored { key, what });
                    }
                    if got.truncated {
                        let what =
                            format!("a notify message longer than {NOTIFY_BUFFER} bytes was ignored");
                        let _ = tx.send(ReadyMsg::Ignored { key, what });
                    }
                    // Like systemd, a message cut short is ignored whole: its last line may be
                    // a fragment ("READY=1" of "READY=10"), and what was lost is unknown.
                    let ready = !got.truncated && is_ready(&buf[..got.len]);
                    if ready && tx.send(ReadyMsg::Probed(key)).is_err() {
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

/// Largest notify message read whole; systemd's limit is 4096 bytes too.
const NOTIFY_BUFFER: usize = 4096;

/// The file in each notify directory whose lock its cargo hot holds while it runs.
const NOTIFY_LOCK: &str = "lock";

fn hold_lock(path: &Path) -> Result<std::fs::File> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("failed to create {}", path.display()))?;
    file.try_lock()
        .with_context(|| format!("failed to lock {}", path.display()))?;
    Ok(file)
}

/// A cargo hot that was SIGKILLed could not remove its notify directory; the next run does,
/// for every directory of ours whose lock nobody holds. A lock, not the pid in the name:
/// another PID namespace sharing this temp dir (a container) has pids that mean nothing
/// here, and a pid may be reused; the kernel drops a lock when its holder dies, wherever.
/// A directory without a lock file is left alone: nothing proves it dead.
fn remove_stale_notify_dirs(temp: &Path) {
    let Ok(entries) = std::fs::read_dir(temp) else {
        return;
    };
    for entry in entries.flatten() {
        let ours = entry
            .file_name()
            .to_str()
            .is_some_and(|n| n.starts_with(NOTIFY_DIR_PREFIX));
        if !ours {
            continue;
        }
        let Ok(lock) = std::fs::File::open(entry.path().join(NOTIFY_LOCK)) else {
            continue;
        };
        if lock.try_lock().is_ok() {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// One datagram on a notify socket, as received.
#[derive(Debug, Default, PartialEq, Eq)]
struct Datagram {
    len: usize,
    /// The message did not fit the buffer: only its start was received.
    truncated: bool,
    /// File descriptors that came with it (`FDSTORE=1`), already closed: the fd store is not
    /// supported, and a kept fd would leak into cargo hot and every later target.
    closed_fds: usize,
}

/// Room for the most fds one message can carry (Linux's SCM_MAX_FD is 253), so nothing sent
/// is dropped unseen; u64s for cmsghdr's alignment.
const CONTROL_WORDS: usize = 160;

/// Receives one datagram. On Linux received fds arrive close-on-exec (`MSG_CMSG_CLOEXEC`, so
/// no spawn on another thread can inherit one in between); everywhere they are closed before
/// this returns.
fn recv_datagram(socket: &UnixDatagram, buf: &mut [u8]) -> std::io::Result<Datagram> {
    use std::os::fd::AsRawFd;
    #[cfg(target_os = "linux")]
    const FLAGS: libc::c_int = libc::MSG_CMSG_CLOEXEC;
    #[cfg(not(target_os = "linux"))]
    const FLAGS: libc::c_int = 0;
    let mut control = [0u64; CONTROL_WORDS];
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
        let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, FLAGS) };
        if n >= 0 {
            break n as usize;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    };
    let mut got = Datagram {
        len,
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
        closed_fds: 0,
    };
    // SAFETY: walking the control buffer the kernel just filled, with libc's own macros; each
    // SCM_RIGHTS entry is an array of fds now owned by us, closed exactly once here.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            if (*cmsg).cmsg_level == libc::SOL_SOCKET && (*cmsg).cmsg_type == libc::SCM_RIGHTS {
                let data = libc::CMSG_DATA(cmsg);
                let data_len = (*cmsg).cmsg_len as usize - (data as usize - cmsg as usize);
                for i in 0..data_len / std::mem::size_of::<libc::c_int>() {
                    let fd: libc::c_int =
                        std::ptr::read_unaligned(data.cast::<libc::c_int>().add(i));
                    libc::close(fd);
                    got.closed_fds += 1;
                }
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(got)
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

    /// Suspected in the audit, confirmed here: liveness came from `kill(pid, 0)`, so a live
    /// cargo hot in another PID namespace sharing /tmp (its pid is unknown here) lost its
    /// directory. Its lock, held by an open file, is what counts now.
    #[test]
    fn stale_notify_dirs_are_those_whose_lock_is_free() {
        let temp = tempfile::tempdir().unwrap();
        // 4194305 is above Linux's pid_max: no process here has it.
        let dead = temp.path().join(format!("{NOTIFY_DIR_PREFIX}4194305-1a"));
        let elsewhere = temp.path().join(format!("{NOTIFY_DIR_PREFIX}4194305-2b"));
        let unknown = temp.path().join(format!("{NOTIFY_DIR_PREFIX}4194305-3c"));
        let other = temp.path().join("cargo-hot-notify-notes");
        for dir in [&dead, &elsewhere, &unknown, &other] {
            std::fs::create_dir(dir).unwrap();
        }
        std::fs::write(dead.join(NOTIFY_LOCK), "").unwrap();
        std::fs::write(dead.join("notify"), "").unwrap();
        // Another open file description holds the lock, as a live instance would.
        let _held = hold_lock(&elsewhere.join(NOTIFY_LOCK)).unwrap();
        remove_stale_notify_dirs(temp.path());
        assert!(!dead.exists());
        assert!(
            elsewhere.exists(),
            "a live instance lost its notify directory"
        );
        assert!(unknown.exists() && other.exists());
    }

    /// Sends `data` with `fd` attached as SCM_RIGHTS, as `sd_pid_notify_with_fds` does.
    fn send_with_fd(path: &Path, data: &[u8], fd: std::os::fd::RawFd) {
        use std::os::fd::AsRawFd;
        let client = UnixDatagram::unbound().unwrap();
        client.connect(path).unwrap();
        // SAFETY: a msghdr with one iovec and one SCM_RIGHTS cmsg, all live for the call.
        unsafe {
            let mut control = [0u64; 4];
            let mut iov = libc::iovec {
                iov_base: data.as_ptr() as *mut _,
                iov_len: data.len(),
            };
            let mut msg: libc::msghdr = std::mem::zeroed();
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = control.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(4) as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::SOL_SOCKET;
            (*cmsg).cmsg_type = libc::SCM_RIGHTS;
            (*cmsg).cmsg_len = libc::CMSG_LEN(4) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), fd);
            let sent = libc::sendmsg(client.as_raw_fd(), &msg, 0);
            assert_eq!(
                sent,
                data.len() as isize,
                "{}",
                std::io::Error::last_os_error()
            );
        }
    }

    /// `FDSTORE=1` with an fd leaked it into cargo hot (and, without close-on-exec, into every
    /// later target). The write end of a pipe sent that way must be closed by the receiver:
    /// its read end then sees end of file.
    #[test]
    fn fds_sent_to_the_notify_socket_are_closed() {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut notify = NotifySocket::start(tx).unwrap();
        let path = notify.path_for(7).unwrap();
        let mut fds = [0; 2];
        // SAFETY: pipe into a two-element array.
        assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
        // SAFETY: both fds were just created and are owned here.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        send_with_fd(&path, b"FDSTORE=1\nREADY=1\n", write.as_raw_fd());
        drop(write);
        match rx.recv_timeout(WAIT).unwrap() {
            ReadyMsg::Ignored { key: 7, what } => {
                assert!(what.contains("1 file descriptor(s)") && what.contains("FDSTORE"));
            }
            other => panic!("expected a notice first, got {other:?}"),
        }
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), ReadyMsg::Probed(7));
        let mut pollfd = libc::pollfd {
            fd: read.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll on one live fd; 10 s is only a bound, the hang-up comes at once.
        let ready = unsafe { libc::poll(&mut pollfd, 1, 10_000) };
        assert!(
            ready == 1 && pollfd.revents & libc::POLLHUP != 0,
            "the received fd was kept open"
        );
    }

    /// A message longer than the buffer arrives cut short; what it meant is unknown, so it is
    /// ignored rather than half-read.
    #[test]
    fn truncated_notify_messages_are_ignored() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let mut notify = NotifySocket::start(tx).unwrap();
        let path = notify.path_for(3).unwrap();
        let client = UnixDatagram::unbound().unwrap();
        let mut long = b"READY=1\nSTATUS=".to_vec();
        long.resize(NOTIFY_BUFFER + 100, b'x');
        client.send_to(&long, &path).unwrap();
        client.send_to(b"READY=1", &path).unwrap();
        assert!(matches!(
            rx.recv_timeout(WAIT).unwrap(),
            ReadyMsg::Ignored { what, .. } if what.contains("longer than 4096 bytes")
        ));
        // Messages are handled in order: had the long one counted, its report came first and
        // a second one would be waiting.
        assert_eq!(rx.recv_timeout(WAIT).unwrap(), ReadyMsg::Probed(3));
        assert!(rx.try_recv().is_err(), "the truncated message counted");
    }
}
