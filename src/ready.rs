//! Readiness: when a freshly started process counts as serving.
//!
//! Overlapping restarts hinge on this: the old process is asked to stop only once the new one
//! is ready, so "ready" must mean something. A [`ReadyCheck`] is what the user asked for with
//! `--ready`; the engine turns it into a probe when a process starts and tells the supervisor
//! when the probe succeeds. Deadlines (`delay:` and the ready timeout) are the engine's; this
//! module owns parsing the specs, the polling threads of `tcp:` and `http:` probes, and the
//! `NOTIFY_SOCKET` that `notify` targets report `READY=1` to (the sd_notify protocol).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use crossbeam_channel::Sender;
use regex::Regex;

use crate::duration::parse_duration;
use crate::process::ProcKey;
use crate::sockets::split_target;

/// How long a target that was handed sockets must stay alive, with no `--ready` of its own,
/// before it counts as ready. Long enough to catch a crash at start-up (a bad config, a panic
/// in `main`), short enough not to be noticed: while both run, both accept on the socket.
pub const SOCKET_GRACE: Duration = Duration::from_millis(500);

/// What the user asked to wait for.
#[derive(Debug, Clone)]
pub enum ReadyCheck {
    /// Ready as soon as it is started.
    Started,
    /// `READY=1` on `NOTIFY_SOCKET` (sd_notify).
    Notify,
    /// A TCP connect succeeds.
    Tcp(SocketAddr),
    /// An HTTP GET answers 2xx.
    Http(HttpProbe),
    /// The target prints a line matching the regex.
    Log(Regex),
    /// Alive for this long.
    Delay(Duration),
}

impl PartialEq for ReadyCheck {
    fn eq(&self, other: &Self) -> bool {
        use ReadyCheck::*;
        match (self, other) {
            (Started, Started) | (Notify, Notify) => true,
            (Tcp(a), Tcp(b)) => a == b,
            (Http(a), Http(b)) => a == b,
            (Log(a), Log(b)) => a.as_str() == b.as_str(),
            (Delay(a), Delay(b)) => a == b,
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpProbe {
    pub addr: SocketAddr,
    /// The `Host` header: what the URL named.
    pub host: String,
    pub path: String,
    pub url: String,
}

/// `--ready [TARGET=]SPEC`.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadySpec {
    pub target: Option<String>,
    pub check: ReadyCheck,
}

const SPEC_HELP: &str =
    "expected notify, tcp:HOST:PORT, http://HOST:PORT/PATH, log:REGEX or delay:DURATION";

impl ReadySpec {
    pub fn parse(text: &str) -> Result<ReadySpec> {
        let (target, spec) = split_target(text.trim());
        let check = parse_check(spec).with_context(|| format!("invalid --ready `{text}`"))?;
        Ok(ReadySpec {
            target: target.map(str::to_string),
            check,
        })
    }
}

fn parse_check(spec: &str) -> Result<ReadyCheck> {
    if spec == "notify" {
        return Ok(ReadyCheck::Notify);
    }
    if let Some(addr) = spec.strip_prefix("tcp:") {
        return Ok(ReadyCheck::Tcp(resolve(addr)?));
    }
    if spec.starts_with("https://") || spec.starts_with("http:https://") {
        bail!("https is not supported: probe the plain-HTTP address, e.g. http://127.0.0.1:3000/health");
    }
    if let Some(url) = spec
        .strip_prefix("http:")
        .filter(|u| u.starts_with("http://"))
    {
        return parse_http(url);
    }
    if spec.starts_with("http://") {
        return parse_http(spec);
    }
    if let Some(pattern) = spec.strip_prefix("log:") {
        let regex =
            Regex::new(pattern).with_context(|| format!("`{pattern}` is not a valid regex"))?;
        return Ok(ReadyCheck::Log(regex));
    }
    if let Some(duration) = spec.strip_prefix("delay:") {
        return Ok(ReadyCheck::Delay(parse_duration(duration)?));
    }
    bail!("{SPEC_HELP}")
}

fn resolve(addr: &str) -> Result<SocketAddr> {
    let addr = match addr.strip_prefix(':') {
        Some(port) => format!("127.0.0.1:{port}"),
        None => addr.to_string(),
    };
    addr.to_socket_addrs()
        .with_context(|| format!("`{addr}` is not HOST:PORT"))?
        .next()
        .with_context(|| format!("`{addr}` resolves to no address"))
}

fn parse_http(url: &str) -> Result<ReadyCheck> {
    let rest = url
        .strip_prefix("http://")
        .context("expected http://HOST:PORT/PATH")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| p.parse::<u16>().is_ok())
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    Ok(ReadyCheck::Http(HttpProbe {
        addr: resolve(&with_port)?,
        host: authority.to_string(),
        path: path.to_string(),
        url: url.to_string(),
    }))
}

impl ReadyCheck {
    /// Said in the UI: `ready (http://127.0.0.1:3000/health answered 200)`.
    pub fn describe(&self) -> String {
        match self {
            ReadyCheck::Started => "started".into(),
            ReadyCheck::Notify => "sent READY=1".into(),
            ReadyCheck::Tcp(addr) => format!("accepted a connection on {addr}"),
            ReadyCheck::Http(probe) => format!("{} answered 2xx", probe.url),
            ReadyCheck::Log(regex) => format!("printed a line matching `{regex}`"),
            ReadyCheck::Delay(delay) => format!("alive for {}ms", delay.as_millis()),
        }
    }

    /// The address a network probe talks to.
    pub fn probed_addr(&self) -> Option<SocketAddr> {
        match self {
            ReadyCheck::Tcp(addr) => Some(*addr),
            ReadyCheck::Http(probe) => Some(probe.addr),
            _ => None,
        }
    }
}

/// What readiness threads tell the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadyMsg {
    /// A `tcp:`/`http:` probe of the process with this key succeeded.
    Probed(ProcKey),
    /// A process sent `READY=1`; `pid` is the sender as the kernel saw it.
    Notified { pid: u32 },
    /// Part of a notify message was not acted on (shown with `-v`).
    Ignored { pid: u32, what: String },
}

/// Stops a polling probe when dropped: the process exited, became ready, or was stopped.
#[derive(Debug)]
pub struct PollerGuard {
    cancel: Arc<AtomicBool>,
}

impl Drop for PollerGuard {
    fn drop(&mut self) {
        self.cancel.store(true, Ordering::Relaxed);
    }
}

/// Polls a `tcp:` or `http:` check for the process `key` until it succeeds (then reports it
/// once) or the guard is dropped. Backs off from 20 ms to 250 ms: a server
/// that binds in a few milliseconds is seen at once, a slow one costs a few wakeups a second.
pub fn start_poller(check: &ReadyCheck, key: ProcKey, tx: Sender<ReadyMsg>) -> Result<PollerGuard> {
    let check = check.clone();
    let cancel = Arc::new(AtomicBool::new(false));
    let stop = cancel.clone();
    std::thread::Builder::new()
        .name(format!("hot-ready-{key}"))
        .spawn(move || {
            let mut pause = Duration::from_millis(20);
            while !stop.load(Ordering::Relaxed) {
                if probe_once(&check) {
                    let _ = tx.send(ReadyMsg::Probed(key));
                    return;
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(250));
            }
        })
        .context("failed to start a readiness probe thread")?;
    Ok(PollerGuard { cancel })
}

const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

fn probe_once(check: &ReadyCheck) -> bool {
    match check {
        ReadyCheck::Tcp(addr) => TcpStream::connect_timeout(addr, PROBE_TIMEOUT).is_ok(),
        ReadyCheck::Http(probe) => http_status(probe).is_some_and(|s| (200..300).contains(&s)),
        _ => false,
    }
}

/// One `GET`, returning the status code. HTTP/1.0 with `Connection: close` keeps the answer
/// unchunked and the read bounded.
fn http_status(probe: &HttpProbe) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&probe.addr, PROBE_TIMEOUT).ok()?;
    stream.set_read_timeout(Some(PROBE_TIMEOUT)).ok()?;
    stream.set_write_timeout(Some(PROBE_TIMEOUT)).ok()?;
    let request = format!(
        "GET {} HTTP/1.0\r\nHost: {}\r\nUser-Agent: cargo-hot\r\nConnection: close\r\n\r\n",
        probe.path, probe.host
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut head = [0u8; 64];
    let mut len = 0;
    while len < 12 {
        match stream.read(&mut head[len..]) {
            Ok(0) | Err(_) => break,
            Ok(n) => len += n,
        }
    }
    parse_status_line(&head[..len])
}

fn parse_status_line(head: &[u8]) -> Option<u16> {
    let text = std::str::from_utf8(head).ok()?;
    let mut parts = text.split_whitespace();
    parts.next().filter(|v| v.starts_with("HTTP/"))?;
    parts.next()?.parse().ok()
}

/// The `NOTIFY_SOCKET` of this run: one datagram socket for every target, with `SO_PASSCRED`
/// so the kernel tells us which process sent each message (as systemd does). Lives in a
/// private directory under the temp dir, removed when cargo hot exits; a filesystem path
/// rather than an abstract name because not every sd_notify client understands `@names`.
#[cfg(target_os = "linux")]
pub struct NotifySocket {
    dir: PathBuf,
    path: PathBuf,
    /// Held for the life of the run: the kernel releases it however cargo hot dies.
    _lock: std::fs::File,
}

#[cfg(target_os = "linux")]
impl NotifySocket {
    /// Binds the socket and starts the thread that forwards `READY=1` as [`ReadyMsg::Notified`].
    pub fn start(tx: Sender<ReadyMsg>) -> Result<NotifySocket> {
        use std::os::unix::fs::DirBuilderExt;
        use std::os::unix::net::UnixDatagram;

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
        let path = dir.join("notify");
        let socket = UnixDatagram::bind(&path)
            .with_context(|| format!("failed to bind the notify socket {}", path.display()))?;
        pass_credentials(&socket)?;
        std::thread::Builder::new()
            .name("hot-notify".into())
            .spawn(move || {
                let mut buf = vec![0u8; NOTIFY_BUFFER];
                while let Ok(got) = recv_datagram(&socket, &mut buf) {
                    let pid = got.pid;
                    if got.closed_fds > 0 {
                        let what = format!(
                            "{} file descriptor(s) sent to the notify socket were closed: cargo hot has no fd store (FDSTORE=1)",
                            got.closed_fds
                        );
                        let _ = tx.send(ReadyMsg::Ignored { pid, what });
                    }
                    if got.truncated {
                        let what = format!(
                            "a notify message longer than {NOTIFY_BUFFER} bytes was ignored"
                        );
                        let _ = tx.send(ReadyMsg::Ignored { pid, what });
                    }
                    // Like systemd, a message cut short is ignored whole: its last line may be
                    // a fragment ("READY=1" of "READY=10"), and what was lost is unknown.
                    let ready = !got.truncated && is_ready_message(&buf[..got.len]);
                    if ready && tx.send(ReadyMsg::Notified { pid: got.pid }).is_err() {
                        return;
                    }
                }
            })
            .context("failed to start the notify thread")?;
        Ok(NotifySocket {
            dir,
            path,
            _lock: lock,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(target_os = "linux")]
impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Largest notify message read whole; systemd's limit is 4096 bytes too.
#[cfg(target_os = "linux")]
const NOTIFY_BUFFER: usize = 4096;

/// Whether an sd_notify message says `READY=1` on a line of its own.
fn is_ready_message(message: &[u8]) -> bool {
    message
        .split(|&b| b == b'\n')
        .any(|line| line.trim_ascii() == b"READY=1")
}

#[cfg(target_os = "linux")]
const NOTIFY_DIR_PREFIX: &str = "cargo-hot-notify-";

/// The file in each notify directory whose lock its cargo hot holds while it runs.
#[cfg(target_os = "linux")]
const NOTIFY_LOCK: &str = "lock";

#[cfg(target_os = "linux")]
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
#[cfg(target_os = "linux")]
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

#[cfg(target_os = "linux")]
fn pass_credentials(socket: &std::os::unix::net::UnixDatagram) -> Result<()> {
    use std::os::fd::AsRawFd;
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

/// One datagram on the notify socket, as received.
#[cfg(target_os = "linux")]
#[derive(Debug, Default, PartialEq, Eq)]
struct Datagram {
    len: usize,
    /// The sender, from `SCM_CREDENTIALS` (the kernel fills them in for every sender once
    /// `SO_PASSCRED` is set); 0 if absent.
    pid: u32,
    /// The message did not fit the buffer: only its start was received.
    truncated: bool,
    /// File descriptors that came with it (`FDSTORE=1`), already closed: the fd store is not
    /// supported, and a kept fd would leak into cargo hot and every later target.
    closed_fds: usize,
}

/// Room for the credentials and for the most fds one message can carry (the kernel's
/// SCM_MAX_FD is 253), so nothing sent is dropped unseen; u64s for cmsghdr's alignment.
#[cfg(target_os = "linux")]
const CONTROL_WORDS: usize = 160;

/// Receives one datagram. Received fds arrive close-on-exec (`MSG_CMSG_CLOEXEC`, so no spawn
/// on another thread can inherit one in between) and are closed before this returns.
#[cfg(target_os = "linux")]
fn recv_datagram(
    socket: &std::os::unix::net::UnixDatagram,
    buf: &mut [u8],
) -> std::io::Result<Datagram> {
    use std::os::fd::AsRawFd;
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
        let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, libc::MSG_CMSG_CLOEXEC) };
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
        ..Datagram::default()
    };
    // SAFETY: walking the control buffer the kernel just filled, with libc's own macros; each
    // SCM_RIGHTS entry is an array of fds now owned by us, closed exactly once here.
    unsafe {
        let mut cmsg = libc::CMSG_FIRSTHDR(&msg);
        while !cmsg.is_null() {
            let data = libc::CMSG_DATA(cmsg);
            let data_len = (*cmsg).cmsg_len as usize - (data as usize - cmsg as usize);
            match ((*cmsg).cmsg_level, (*cmsg).cmsg_type) {
                (libc::SOL_SOCKET, libc::SCM_CREDENTIALS) => {
                    let cred: libc::ucred = std::ptr::read_unaligned(data.cast());
                    got.pid = cred.pid as u32;
                }
                (libc::SOL_SOCKET, libc::SCM_RIGHTS) => {
                    let count = data_len / std::mem::size_of::<libc::c_int>();
                    for i in 0..count {
                        let fd: libc::c_int =
                            std::ptr::read_unaligned(data.cast::<libc::c_int>().add(i));
                        libc::close(fd);
                        got.closed_fds += 1;
                    }
                }
                _ => {}
            }
            cmsg = libc::CMSG_NXTHDR(&msg, cmsg);
        }
    }
    Ok(got)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> ReadyCheck {
        ReadySpec::parse(text).unwrap().check
    }

    #[test]
    fn specs_parse() {
        assert_eq!(check("notify"), ReadyCheck::Notify);
        assert_eq!(
            check("tcp:127.0.0.1:3000"),
            ReadyCheck::Tcp("127.0.0.1:3000".parse().unwrap())
        );
        assert_eq!(check("tcp::3000"), check("tcp:127.0.0.1:3000"));
        assert_eq!(
            check("delay:1.5s"),
            ReadyCheck::Delay(Duration::from_millis(1500))
        );
        let ReadyCheck::Http(probe) = check("http://127.0.0.1:3000/health?full=1") else {
            panic!("http")
        };
        assert_eq!(probe.addr, "127.0.0.1:3000".parse().unwrap());
        assert_eq!(probe.path, "/health?full=1");
        assert_eq!(probe.host, "127.0.0.1:3000");
        assert_eq!(
            check("http:http://127.0.0.1:8080/"),
            check("http://127.0.0.1:8080/")
        );
        let ReadyCheck::Http(bare) = check("http://127.0.0.1:8080") else {
            panic!("http")
        };
        assert_eq!(bare.path, "/");
        let ReadyCheck::Log(regex) = check("log:listening on .*:\\d+") else {
            panic!("log")
        };
        assert!(regex.is_match("api listening on http://127.0.0.1:3000"));
    }

    #[test]
    fn target_prefixes_and_equals_signs() {
        let spec = ReadySpec::parse("api=notify").unwrap();
        assert_eq!(spec.target.as_deref(), Some("api"));
        let spec = ReadySpec::parse("log:ready=1").unwrap();
        assert_eq!(spec.target, None);
        assert!(matches!(spec.check, ReadyCheck::Log(r) if r.as_str() == "ready=1"));
        let spec = ReadySpec::parse("worker=log:a=b").unwrap();
        assert_eq!(spec.target.as_deref(), Some("worker"));
    }

    #[test]
    fn bad_specs_say_what_is_expected() {
        for (bad, says) in [
            ("ready", "expected notify"),
            ("log:(", "not a valid regex"),
            ("delay:soon", "not a duration"),
            ("https://x/health", "https is not supported"),
            ("tcp:nowhere", "HOST:PORT"),
        ] {
            let err = format!("{:#}", ReadySpec::parse(bad).unwrap_err());
            assert!(err.contains(bad) && err.contains(says), "{bad}: {err}");
        }
    }

    #[test]
    fn status_lines() {
        assert_eq!(parse_status_line(b"HTTP/1.1 204 No Content\r\n"), Some(204));
        assert_eq!(parse_status_line(b"HTTP/1.0 503 x"), Some(503));
        assert_eq!(parse_status_line(b"SSH-2.0"), None);
        assert_eq!(parse_status_line(b""), None);
    }

    #[test]
    fn an_http_probe_waits_for_a_2xx() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            for status in ["503 Service Unavailable", "200 OK"] {
                let (mut stream, _) = listener.accept().unwrap();
                let mut buf = [0u8; 512];
                let _ = stream.read(&mut buf);
                let _ = write!(stream, "HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n");
            }
        });
        let (tx, rx) = crossbeam_channel::unbounded();
        let check = check(&format!("http://{addr}/health"));
        let _guard = start_poller(&check, 7, tx).unwrap();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(30)).unwrap(),
            ReadyMsg::Probed(7)
        );
        server.join().unwrap();
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn notify_reports_the_sender_pid() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let socket = NotifySocket::start(tx).unwrap();
        let path = socket.path().to_path_buf();
        let client = std::os::unix::net::UnixDatagram::unbound().unwrap();
        client.send_to(b"STATUS=warming up\n", &path).unwrap();
        client.send_to(b"STATUS=done\nREADY=1\n", &path).unwrap();
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)).unwrap(),
            ReadyMsg::Notified {
                pid: std::process::id()
            }
        );
        let dir = path.parent().unwrap().to_path_buf();
        drop(socket);
        assert!(!dir.exists());
    }

    /// Sends `data` with `fd` attached as SCM_RIGHTS, as `sd_pid_notify_with_fds` does.
    #[cfg(target_os = "linux")]
    fn send_with_fd(path: &Path, data: &[u8], fd: std::os::fd::RawFd) {
        use std::os::fd::AsRawFd;
        let client = std::os::unix::net::UnixDatagram::unbound().unwrap();
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
    #[cfg(target_os = "linux")]
    #[test]
    fn fds_sent_to_the_notify_socket_are_closed() {
        use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
        let (tx, rx) = crossbeam_channel::unbounded();
        let socket = NotifySocket::start(tx).unwrap();
        let mut fds = [0; 2];
        // SAFETY: pipe2 into a two-element array.
        assert_eq!(unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) }, 0);
        // SAFETY: both fds were just created and are owned here.
        let (read, write) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
        send_with_fd(socket.path(), b"FDSTORE=1\nREADY=1\n", write.as_raw_fd());
        drop(write);
        let pid = std::process::id();
        match rx.recv_timeout(Duration::from_secs(10)).unwrap() {
            ReadyMsg::Ignored { pid: from, what } => {
                assert_eq!(from, pid);
                assert!(what.contains("1 file descriptor(s)") && what.contains("FDSTORE"));
            }
            other => panic!("expected a notice first, got {other:?}"),
        }
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)).unwrap(),
            ReadyMsg::Notified { pid }
        );
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
    #[cfg(target_os = "linux")]
    #[test]
    fn truncated_notify_messages_are_ignored() {
        let (tx, rx) = crossbeam_channel::unbounded();
        let socket = NotifySocket::start(tx).unwrap();
        let client = std::os::unix::net::UnixDatagram::unbound().unwrap();
        let mut long = b"READY=1\nSTATUS=".to_vec();
        long.resize(NOTIFY_BUFFER + 100, b'x');
        client.send_to(&long, socket.path()).unwrap();
        client.send_to(b"READY=1", socket.path()).unwrap();
        assert!(matches!(
            rx.recv_timeout(Duration::from_secs(10)).unwrap(),
            ReadyMsg::Ignored { what, .. } if what.contains("longer than 4096 bytes")
        ));
        // Messages are handled in order: had the long one counted, its report came first and
        // a second one would be waiting.
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(10)).unwrap(),
            ReadyMsg::Notified {
                pid: std::process::id()
            }
        );
        assert!(rx.try_recv().is_err(), "the truncated message counted");
    }

    #[test]
    fn ready_lines() {
        assert!(is_ready_message(b"READY=1"));
        assert!(is_ready_message(b"STATUS=x\n READY=1 \n"));
        assert!(!is_ready_message(b"READY=10"));
        assert!(!is_ready_message(b"STATUS=READY=1"));
    }

    /// Suspected in the audit, confirmed here: liveness came from `kill(pid, 0)`, so a live
    /// cargo hot in another PID namespace sharing /tmp (its pid is unknown here) lost its
    /// directory. Its lock, held by an open file, is what counts now.
    #[cfg(target_os = "linux")]
    #[test]
    fn stale_notify_dirs_are_those_whose_lock_is_free() {
        let temp = tempfile::tempdir().unwrap();
        // 4194305 is above the kernel's pid_max: no process here has it.
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
}
