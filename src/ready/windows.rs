//! `ready = notify` on Windows: refused. sd_notify is a Unix datagram protocol, and Windows
//! has no Unix datagram sockets (its `AF_UNIX` is stream-only), so no notify client could
//! reach us. The refusal comes when the spec is parsed, naming what works instead.

use std::path::PathBuf;

use anyhow::{bail, Result};
use crossbeam_channel::Sender;

use super::ReadyMsg;
use crate::process::ProcKey;

const UNSUPPORTED: &str = "`notify` readiness (sd_notify) needs Unix datagram sockets, which \
     Windows does not have: use tcp:HOST:PORT, http://HOST:PORT/PATH, log:REGEX or \
     delay:DURATION instead";

pub(super) fn notify_supported() -> Result<()> {
    bail!(UNSUPPORTED)
}

/// Cannot exist on Windows: [`NotifySocket::start`] always fails, so no value is ever made.
pub enum NotifySocket {}

impl NotifySocket {
    pub fn start(_tx: Sender<ReadyMsg>) -> Result<NotifySocket> {
        bail!(UNSUPPORTED)
    }

    pub fn path_for(&mut self, _key: ProcKey) -> Result<PathBuf> {
        match *self {}
    }

    pub fn forget(&mut self, _key: ProcKey) {
        match *self {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn notify_is_refused_naming_the_alternatives() {
        let err = format!(
            "{:#}",
            super::super::ReadySpec::parse("notify").unwrap_err()
        );
        assert!(err.contains("Windows") && err.contains("tcp:"), "{err}");
    }
}
