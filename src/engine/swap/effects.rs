//! A [`crate::supervisor::Job`]'s view of the operating system, inside the core: what it asks becomes an
//! [`Action`], what it reports becomes an event.

use std::collections::HashMap;

use anyhow::Result;

use crate::build::Staged;
use crate::config::TargetSettings;
use crate::engine::core::Ctx;
use crate::engine::protocol::{Action, ProxyCall};
use crate::event::Event;
use crate::process::{ProcKey, Signal};
use crate::supervisor::Processes;
use crate::workspace::TargetId;

/// The side effects of [`crate::supervisor::Job`]s, as actions: a job's view of the operating system.
pub struct Effects<'a> {
    cx: &'a mut Ctx,
    settings: &'a HashMap<TargetId, TargetSettings>,
    events: Vec<Event>,
}

impl<'a> Effects<'a> {
    pub(super) fn new(
        cx: &'a mut Ctx,
        settings: &'a HashMap<TargetId, TargetSettings>,
    ) -> Effects<'a> {
        Effects {
            cx,
            settings,
            events: Vec::new(),
        }
    }

    fn proxied(&self, target: &TargetId) -> bool {
        self.settings
            .get(target)
            .is_some_and(|s| s.port_env.is_some())
    }

    pub(super) fn flush(self) {
        for event in self.events {
            self.cx.emit(event);
        }
    }
}

impl Processes for Effects<'_> {
    fn spawn(&mut self, target: &TargetId, staged: &Staged, key: ProcKey) -> Result<()> {
        let settings = self
            .settings
            .get(target)
            .ok_or_else(|| anyhow::anyhow!("no settings for {target}"))?;
        self.cx.push(Action::SpawnTarget {
            key,
            target: target.clone(),
            staged: staged.clone(),
            settings: Box::new(settings.clone()),
        });
        Ok(())
    }

    fn signal_group(&mut self, pgid: u32, signal: Signal) {
        self.cx.push(Action::Signal { pgid, signal });
    }

    fn forget(&mut self, key: ProcKey, pgid: u32) {
        self.cx.push(Action::Forget { key, pgid });
    }

    fn next_key(&mut self) -> ProcKey {
        self.cx.next_key()
    }

    fn event(&mut self, event: Event) {
        self.events.push(event);
    }

    fn serve(&mut self, target: &TargetId, key: ProcKey, pid: u32) {
        if self.proxied(target) {
            self.cx.push(Action::Proxy(ProxyCall::Serve {
                target: target.clone(),
                key,
                pid,
            }));
        }
    }

    fn drain(&mut self, target: &TargetId, key: ProcKey) {
        if self.proxied(target) {
            self.cx.push(Action::Proxy(ProxyCall::Retire { key }));
        }
    }
}
