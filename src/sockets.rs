//! Listening sockets that live in cargo hot and outlive every restart of a target.
//!
//! Every tool our users had closes the port for the length of a restart: the old server is
//! killed, the new one binds again, and clients are refused in between. Here cargo hot binds
//! each `--listen` address once, at start, and hands the same socket to every run of every
//! target that asks for it, with the systemd socket-activation protocol that the `listenfd`
//! and `systemd` crates read: the sockets as fds 3, 4, … in order, `LISTEN_FDS`,
//! `LISTEN_FDNAMES`, and `LISTEN_PID` (set in the child itself, see [`crate::process`]).
//! Because the socket never closes, a connection made while no process accepts waits in the
//! kernel's backlog instead of being refused.
//!
//! This module owns parsing `[TARGET=]ADDR`, binding, and which target gets which socket. The
//! engine owns the [`Sockets`] for the life of the run; the supervisor never sees them.

use std::fmt;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use crate::process::RawSource;
use crate::workspace::TargetId;

// Binding and the socket type: fds on unix; on Windows `--listen` is refused for now.
#[cfg(unix)]
mod unix;
#[cfg(unix)]
use unix as sys;
#[cfg(windows)]
mod windows;
#[cfg(windows)]
use windows as sys;

/// Where to listen, as the user wrote it on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenSpec {
    /// Only this target gets the socket; `None`: every selected target does.
    pub target: Option<String>,
    pub addr: ListenAddr,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListenAddr {
    Tcp(SocketAddr),
    Unix(PathBuf),
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(addr) => write!(f, "{addr}"),
            ListenAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

/// Splits `TARGET=REST` from `REST`, for `--listen` and `--ready`.
///
/// A value whose text before the first `=` could itself start a value (`unix:`, `http:`, a
/// digit, `[`, …) has no target prefix: `log:ready=1` is a regex, not a target named `log:ready`.
pub fn split_target(text: &str) -> (Option<&str>, &str) {
    match text.split_once('=') {
        Some((name, rest))
            if !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '/')) =>
        {
            (Some(name), rest)
        }
        _ => (None, text),
    }
}

impl ListenSpec {
    /// Parses `[TARGET=]ADDR`: `127.0.0.1:3000`, `:3000` or `3000` (loopback, never every
    /// interface by surprise), `[::1]:3000`, `0.0.0.0:3000`, `localhost:3000`,
    /// `unix:/path/sock` (relative paths are taken from `cwd`).
    pub fn parse(text: &str, cwd: &Path) -> Result<ListenSpec> {
        let (target, addr) = split_target(text.trim());
        let addr = parse_addr(addr, cwd).with_context(|| format!("invalid --listen `{text}`"))?;
        Ok(ListenSpec {
            target: target.map(str::to_string),
            addr,
        })
    }

    /// Whether `target` gets this socket.
    pub fn applies_to(&self, target: &TargetId) -> bool {
        self.target
            .as_deref()
            .is_none_or(|name| target_matches(name, target))
    }
}

/// A target named on the command line: by its name, or `package/name` when that is ambiguous.
pub fn target_matches(name: &str, target: &TargetId) -> bool {
    name == target.name || name == target.qualified()
}

fn parse_addr(text: &str, cwd: &Path) -> Result<ListenAddr> {
    if let Some(path) = text.strip_prefix("unix:") {
        if path.is_empty() {
            bail!("`unix:` needs a path, e.g. unix:/tmp/api.sock");
        }
        return Ok(ListenAddr::Unix(cwd.join(path)));
    }
    let loopback_port = text.strip_prefix(':').unwrap_or(text);
    if !loopback_port.is_empty() && loopback_port.bytes().all(|b| b.is_ascii_digit()) {
        let port: u16 = loopback_port
            .parse()
            .with_context(|| format!("`{loopback_port}` is not a port number (0-65535)"))?;
        return Ok(ListenAddr::Tcp(SocketAddr::from(([127, 0, 0, 1], port))));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(ListenAddr::Tcp(addr));
    }
    let mut resolved = text.to_socket_addrs().with_context(|| {
        format!("expected HOST:PORT, :PORT, [IPv6]:PORT or unix:PATH, not `{text}`")
    })?;
    match resolved.next() {
        Some(addr) => Ok(ListenAddr::Tcp(addr)),
        None => bail!("`{text}` resolves to no address"),
    }
}

/// One bound, listening socket.
#[derive(Debug)]
pub struct BoundSocket {
    pub spec: ListenSpec,
    /// The address actually bound (port 0 becomes the port the kernel chose).
    pub local: ListenAddr,
    fd: sys::Socket,
    /// The socket file we created, removed again when cargo hot exits.
    unix_path: Option<PathBuf>,
}

impl BoundSocket {
    /// What the child gets (as fd 3, 4, … on unix).
    pub fn raw_fd(&self) -> RawSource {
        sys::raw(&self.fd)
    }

    /// The socket's name in `LISTEN_FDNAMES`: its port, or its file name for a Unix socket, so a
    /// program handed several can tell them apart by name as well as by order. (systemd allows
    /// neither `:` nor `/` in a name, which rules out the address itself.)
    pub fn fd_name(&self) -> String {
        match &self.local {
            ListenAddr::Tcp(addr) => addr.port().to_string(),
            ListenAddr::Unix(path) => path
                .file_name()
                .map(|n| n.to_string_lossy().replace(':', "_"))
                .unwrap_or_else(|| "unix".into()),
        }
    }
}

impl Drop for BoundSocket {
    fn drop(&mut self) {
        if let Some(path) = &self.unix_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

/// Every socket of the run, in command-line order.
#[derive(Debug, Default)]
pub struct Sockets {
    sockets: Vec<BoundSocket>,
}

impl Sockets {
    /// Binds every spec, or fails naming the address that could not be bound.
    pub fn bind(specs: &[ListenSpec]) -> Result<Sockets> {
        let sockets = specs
            .iter()
            .map(|spec| {
                let (fd, local, unix_path) = sys::bind(spec)
                    .with_context(|| format!("failed to listen on {}", spec.addr))?;
                Ok(BoundSocket {
                    spec: spec.clone(),
                    local,
                    fd,
                    unix_path,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Sockets { sockets })
    }

    pub fn all(&self) -> &[BoundSocket] {
        &self.sockets
    }

    /// The sockets `target` gets, in the order it will see them (fds 3, 4, …).
    pub fn for_target<'a>(&'a self, target: &'a TargetId) -> impl Iterator<Item = &'a BoundSocket> {
        self.sockets.iter().filter(|s| s.spec.applies_to(target))
    }

    /// Whether `addr` is one of ours: a probe of it is answered by whichever process accepts,
    /// old or new, so it cannot tell whether the new one is ready.
    pub fn holds(&self, addr: &SocketAddr) -> bool {
        self.sockets.iter().any(|s| match &s.local {
            ListenAddr::Tcp(ours) => {
                ours.port() == addr.port() && (ours.ip() == addr.ip() || ours.ip().is_unspecified())
            }
            ListenAddr::Unix(_) => false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::RunKind;

    fn parse(text: &str) -> ListenSpec {
        ListenSpec::parse(text, Path::new("/work")).unwrap()
    }

    fn tcp(text: &str) -> ListenAddr {
        ListenAddr::Tcp(text.parse().unwrap())
    }

    #[test]
    fn addresses_default_to_loopback() {
        assert_eq!(parse(":3000").addr, tcp("127.0.0.1:3000"));
        assert_eq!(parse("3000").addr, tcp("127.0.0.1:3000"));
        assert_eq!(parse("127.0.0.1:3000").addr, tcp("127.0.0.1:3000"));
        assert_eq!(parse("0.0.0.0:80").addr, tcp("0.0.0.0:80"));
        assert_eq!(parse("[::1]:3000").addr, tcp("[::1]:3000"));
        assert_eq!(
            parse("unix:run/api.sock").addr,
            ListenAddr::Unix("/work/run/api.sock".into())
        );
        assert_eq!(parse(":3000").target, None);
    }

    #[test]
    fn a_target_prefix_limits_the_socket() {
        let spec = parse("api=:3000");
        assert_eq!(spec.target.as_deref(), Some("api"));
        assert_eq!(spec.addr, tcp("127.0.0.1:3000"));
        let api = TargetId {
            package: "shop".into(),
            name: "api".into(),
            kind: RunKind::Bin,
        };
        let worker = TargetId {
            name: "worker".into(),
            ..api.clone()
        };
        assert!(spec.applies_to(&api));
        assert!(!spec.applies_to(&worker));
        assert!(parse("shop/api=3000").applies_to(&api));
        assert!(parse(":3000").applies_to(&worker));
    }

    #[test]
    fn split_target_leaves_values_with_equals_alone() {
        assert_eq!(split_target("api=log:x"), (Some("api"), "log:x"));
        assert_eq!(split_target("log:ready=1"), (None, "log:ready=1"));
        assert_eq!(split_target("http://h/x?a=b"), (None, "http://h/x?a=b"));
        assert_eq!(split_target("=3000"), (None, "=3000"));
    }

    #[test]
    fn bad_addresses_say_what_is_expected() {
        for bad in ["unix:", "99999", "nonsense", "host:port"] {
            let err = format!("{:#}", ListenSpec::parse(bad, Path::new("/")).unwrap_err());
            assert!(err.contains(bad), "{bad}: {err}");
        }
    }

    #[cfg(unix)]
    #[test]
    fn binds_with_a_full_backlog_and_names_a_taken_port() {
        let sockets = Sockets::bind(&[parse("127.0.0.1:0")]).unwrap();
        let ListenAddr::Tcp(local) = sockets.all()[0].local else {
            panic!("tcp")
        };
        assert_ne!(local.port(), 0);
        assert_eq!(sockets.all()[0].fd_name(), local.port().to_string());
        assert!(sockets.holds(&local));
        // Clients connect even though nobody accepts: the backlog holds them.
        let clients: Vec<_> = (0..200)
            .map(|_| std::net::TcpStream::connect(local).unwrap())
            .collect();
        assert_eq!(clients.len(), 200);

        let taken = format!("127.0.0.1:{}", local.port());
        let err = format!("{:#}", Sockets::bind(&[parse(&taken)]).unwrap_err());
        assert!(err.contains(&taken) && err.contains("shows which"), "{err}");
    }

    #[cfg(windows)]
    #[test]
    fn listen_is_refused_on_windows_naming_the_alternative() {
        let err = format!("{:#}", Sockets::bind(&[parse("127.0.0.1:0")]).unwrap_err());
        assert!(
            err.contains("not supported on Windows") && err.contains("systemfd"),
            "{err}"
        );
        assert!(Sockets::bind(&[]).is_ok(), "no --listen, nothing to refuse");
    }

    #[cfg(unix)]
    #[test]
    fn unix_sockets_replace_only_stale_socket_files() {
        use std::os::unix::net::UnixListener;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("api.sock");
        let spec = ListenSpec::parse(&format!("unix:{}", path.display()), dir.path()).unwrap();
        let first = Sockets::bind(std::slice::from_ref(&spec)).unwrap();
        let err = format!(
            "{:#}",
            Sockets::bind(std::slice::from_ref(&spec)).unwrap_err()
        );
        assert!(err.contains("in use"), "{err}");
        // A socket file nobody listens on (a previous run was killed) is replaced.
        std::mem::forget(first);
        let stale = UnixListener::bind(dir.path().join("other.sock")).unwrap();
        drop(stale);
        let other = ListenSpec::parse("unix:other.sock", dir.path()).unwrap();
        let again = Sockets::bind(&[other]).unwrap();
        assert_eq!(again.all()[0].fd_name(), "other.sock");
        drop(again);
        assert!(!dir.path().join("other.sock").exists(), "removed at exit");

        std::fs::write(dir.path().join("notes.txt"), "mine").unwrap();
        let file = ListenSpec::parse("unix:notes.txt", dir.path()).unwrap();
        let err = format!("{:#}", Sockets::bind(&[file]).unwrap_err());
        assert!(err.contains("not a socket"), "{err}");
        assert_eq!(
            std::fs::read_to_string(dir.path().join("notes.txt")).unwrap(),
            "mine"
        );
    }

    /// Another program's live datagram socket answers a stream connect with EPROTOTYPE: that is
    /// not "stale", and the socket must survive.
    #[cfg(unix)]
    #[test]
    fn a_live_datagram_socket_is_never_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dgram.sock");
        let live = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
        let spec = ListenSpec::parse("unix:dgram.sock", dir.path()).unwrap();
        let err = format!("{:#}", Sockets::bind(&[spec]).unwrap_err());
        assert!(
            err.contains(&path.display().to_string()) && err.contains("left alone"),
            "{err}"
        );
        let client = std::os::unix::net::UnixDatagram::unbound().unwrap();
        client.send_to(b"still here", &path).unwrap();
        let mut buf = [0u8; 16];
        let n = live.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"still here");
    }
}
