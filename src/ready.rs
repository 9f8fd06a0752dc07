//! Readiness: when a freshly started process counts as serving.
//!
//! Overlapping restarts hinge on this: the old process is asked to stop only once the new one
//! is ready, so "ready" must mean something. A [`ReadyCheck`] is what the user asked for with
//! `--ready`; the engine turns it into a probe when a process starts and tells the supervisor
//! when the probe succeeds. Deadlines (`delay:` and the ready timeout) are the engine's; this
//! module owns parsing the specs, the polling threads of `tcp:` and `http:` probes, and the
//! `NOTIFY_SOCKET`s that `notify` targets report `READY=1` to (the sd_notify protocol; one
//! socket per run, see `ready/unix.rs`; refused on Windows, see `ready/windows.rs`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use crossbeam_channel::Sender;
use regex::Regex;

// The `NOTIFY_SOCKET` side: Unix datagram sockets, which Windows lacks.
#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as sys;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as sys;

pub use sys::NotifySocket;

use crate::duration::parse_duration;
use crate::process::ProcKey;
use crate::sockets::split_target;

/// How long a target that was handed sockets must stay alive, with no `--ready` of its own,
/// before it counts as ready, unless it sends `READY=1` first. Long enough to catch a crash at
/// start-up (a bad config, a panic in `main`), short enough not to be noticed: while both
/// run, both accept on the socket.
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
    /// `READY=1` if it sends one, else alive for this long: the default for a target handed
    /// sockets. A server that reports readiness (listenfd and sd-notify go together) takes
    /// over the moment it can, rather than sharing the socket with the old process for the
    /// whole grace. Never asked for by name; where no notify socket can exist (Windows), the
    /// delay alone decides.
    NotifyOrDelay(Duration),
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
            (NotifyOrDelay(a), NotifyOrDelay(b)) => a == b,
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
        sys::notify_supported()?;
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
            ReadyCheck::NotifyOrDelay(delay) => {
                format!("sent READY=1 or stayed alive for {}ms", delay.as_millis())
            }
        }
    }

    /// The process gets a `NOTIFY_SOCKET` to report to.
    pub fn uses_notify(&self) -> bool {
        matches!(self, ReadyCheck::Notify | ReadyCheck::NotifyOrDelay(_))
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
    /// The check of the process with this key succeeded: a `tcp:`/`http:` probe answered, or
    /// `READY=1` came on the run's own notify socket ([`NotifySocket::path_for`]).
    Probed(ProcKey),
    /// Part of a notify message of the run `key` was not acted on (shown with `-v`).
    Ignored { key: ProcKey, what: String },
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

#[cfg(test)]
mod tests {
    use super::*;

    fn check(text: &str) -> ReadyCheck {
        ReadySpec::parse(text).unwrap().check
    }

    #[test]
    fn specs_parse() {
        #[cfg(unix)]
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
        let spec = ReadySpec::parse("api=delay:1s").unwrap();
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
}
