//! Binding on unix: TCP and Unix-domain listeners as fds, with the deepest backlog the
//! kernel allows, handed to targets as fds 3, 4, … by [`crate::process`].

use std::net::TcpListener;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::{ListenAddr, ListenSpec};

pub(super) type Socket = OwnedFd;

pub(super) fn raw(socket: &Socket) -> RawFd {
    socket.as_raw_fd()
}

/// Binds `spec`: the socket, the address actually bound, and the socket file to remove at exit.
pub(super) fn bind(spec: &ListenSpec) -> Result<(Socket, ListenAddr, Option<PathBuf>)> {
    let (fd, local, unix_path): (OwnedFd, ListenAddr, Option<PathBuf>) = match &spec.addr {
        ListenAddr::Tcp(addr) => {
            // std sets SO_REUSEADDR, so a restarted cargo hot binds again at once even while
            // connections of its previous run sit in TIME_WAIT.
            let listener = TcpListener::bind(addr).map_err(|e| bind_error(e, &spec.addr))?;
            let local = listener
                .local_addr()
                .context("failed to read the bound address")?;
            (listener.into(), ListenAddr::Tcp(local), None)
        }
        ListenAddr::Unix(path) => {
            remove_stale_unix_socket(path)?;
            let listener = UnixListener::bind(path).map_err(|e| bind_error(e, &spec.addr))?;
            (
                listener.into(),
                ListenAddr::Unix(path.clone()),
                Some(path.clone()),
            )
        }
    };
    // std listens with a backlog of 128; ask for the most the kernel allows (it clamps to
    // net.core.somaxconn). The backlog is what holds clients while no process accepts, so a
    // small one turns a restart under load into timeouts (systemfd uses 1).
    // SAFETY: listen(2) on a socket we own; calling it again only updates the backlog.
    if unsafe { libc::listen(fd.as_raw_fd(), i32::MAX) } != 0 {
        return Err(std::io::Error::last_os_error()).context("failed to set the listen backlog");
    }
    Ok((fd, local, unix_path))
}

fn bind_error(error: std::io::Error, addr: &ListenAddr) -> anyhow::Error {
    let hint = match (error.kind(), addr) {
        (std::io::ErrorKind::AddrInUse, ListenAddr::Tcp(addr)) => format!(
            "; another process holds it (`{}` shows which): stop it or choose another --listen address",
            who_listens(addr.port())
        ),
        (std::io::ErrorKind::PermissionDenied, ListenAddr::Tcp(addr)) if addr.port() < 1024 => {
            "; ports below 1024 need privileges: choose a port above 1023".to_string()
        }
        (std::io::ErrorKind::AddrNotAvailable, _) => {
            "; that address belongs to no interface of this machine".to_string()
        }
        _ => String::new(),
    };
    anyhow::anyhow!("{error}{hint}")
}

/// The command that names the process listening on `port`.
fn who_listens(port: u16) -> String {
    if cfg!(target_os = "linux") {
        format!("ss -ltnp 'sport = :{port}'")
    } else {
        format!("lsof -nP -iTCP:{port} -sTCP:LISTEN")
    }
}

/// A socket file left by a previous run that nobody listens on any more is ours to replace;
/// anything else at that path (a live socket, a regular file) is the user's and stays.
fn remove_stale_unix_socket(path: &Path) -> Result<()> {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Ok(());
    };
    if !meta.file_type().is_socket() {
        bail!(
            "{} exists and is not a socket: remove it or choose another unix: path",
            path.display()
        );
    }
    // Only a refused connection proves nobody is behind the file. Any other error (EPROTOTYPE
    // from another program's datagram socket, EACCES from one we may not use) says nothing
    // about whether it is alive, and replacing a live socket breaks its owner.
    match UnixStream::connect(path) {
        Ok(_) => bail!(
            "{} is in use: another process listens on it; stop it or choose another path",
            path.display()
        ),
        Err(error) if error.raw_os_error() == Some(libc::ECONNREFUSED) => {}
        Err(error) => bail!(
            "{} is a socket that cargo hot cannot tell is stale (connecting to it failed: {error}); it may belong to a live program, so it is left alone: remove it yourself if it is stale, or choose another unix: path",
            path.display()
        ),
    }
    std::fs::remove_file(path)
        .with_context(|| format!("failed to remove the stale socket {}", path.display()))
}
