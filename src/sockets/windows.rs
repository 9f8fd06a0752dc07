//! `--listen` on Windows: refused, with the alternative named.
//!
//! A Windows process cannot inherit a listening socket as a numbered fd; listenfd instead reads
//! systemfd's protocol (`SYSTEMFD_SOCKET_SERVER`, `SYSTEMFD_SOCKET_SECRET`): the child connects
//! to a local server, sends the secret and its pid, and gets each socket back as a
//! `WSADuplicateSocket` protocol record. cargo hot does not serve that protocol yet, and
//! nothing here could run it, so binding is refused. systemfd itself serves it to every process
//! that asks, so running cargo hot under systemfd gives listenfd apps the same handoff: cargo
//! hot passes `SYSTEMFD_*` on to every target it starts.

use std::os::windows::io::{AsRawSocket, OwnedSocket, RawSocket};
use std::path::PathBuf;

use anyhow::{bail, Result};

use super::{ListenAddr, ListenSpec};

pub(super) type Socket = OwnedSocket;

pub(super) fn raw(socket: &Socket) -> RawSocket {
    socket.as_raw_socket()
}

pub(super) fn bind(spec: &ListenSpec) -> Result<(Socket, ListenAddr, Option<PathBuf>)> {
    let port = match &spec.addr {
        ListenAddr::Tcp(addr) => addr.port().to_string(),
        ListenAddr::Unix(_) => "PORT".to_string(),
    };
    bail!(
        "--listen is not supported on Windows yet: cargo hot cannot hand its socket to a new \
         process there. For zero-downtime restarts of a listenfd app, run cargo hot under \
         systemfd, which serves listenfd's Windows protocol to every target cargo hot starts: \
         `systemfd --no-pid -s http::{port} -- cargo hot` (without --listen)"
    )
}
