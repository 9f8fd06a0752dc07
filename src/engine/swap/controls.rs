//! What the user steers by hand in `cargo hot run`: the keys that restart, stop and start one
//! target (`1`-`9`, `s` then `1`-`9`), and the changes that restart without a build (under a
//! `--watch` directory, or to an env file).
//!
//! A target stopped with `s` is *held*: builds still stage its new executable, but nothing
//! starts it until `s` (or its number) does.

use std::path::PathBuf;
use std::time::Instant;

use super::{Effects, Swap};
use crate::engine::core::Ctx;
use crate::event::Event;
use crate::ui::Key;
use crate::workspace::TargetId;

impl Swap {
    /// `1`-`9` and `s` `1`-`9`.
    pub(super) fn on_target_key(&mut self, cx: &mut Ctx, key: Key, now: Instant) {
        let (Key::Restart(n) | Key::StopStart(n)) = key else {
            return;
        };
        if cx.quitting() {
            return;
        }
        let Some(target) = n.checked_sub(1).and_then(|i| self.targets.get(i)).cloned() else {
            cx.emit(Event::Warning {
                message: format!(
                    "no target {n}: the targets are numbered 1 to {} in the status area",
                    self.targets.len()
                ),
            });
            return;
        };
        let Some(job) = self.jobs.iter_mut().find(|j| j.target == target) else {
            return;
        };
        if job.latest.is_none() {
            cx.emit(Event::Warning {
                message: format!(
                    "{target} has not been built yet: it starts after its first good build"
                ),
            });
            return;
        }
        match key {
            Key::StopStart(_) if job.is_alive() => {
                self.held.insert(target.clone());
                let mut fx = Effects::new(cx, &self.settings);
                job.stop(&format!("stopped ({n}: s)"), &mut fx, now);
                fx.flush();
            }
            Key::StopStart(_) => {
                self.held.remove(&target);
                self.restart_current(cx, &[target], &format!("started (s{n})"), now);
            }
            _ => {
                self.held.remove(&target);
                self.restart_current(cx, &[target], &format!("restart requested ({n})"), now);
            }
        }
    }

    /// Whether `target` was stopped with `s` and waits for it.
    pub(super) fn is_held(&self, target: &TargetId) -> bool {
        self.held.contains(target)
    }

    /// Takes out of `paths` those under a `--watch` directory and restarts every target for
    /// them (no cargo call: nothing in there is part of a build), unless a `watch` entry
    /// already decided for them (`matched`); returns the rest.
    pub(super) fn restart_for_extra_roots(
        &mut self,
        cx: &mut Ctx,
        paths: Vec<PathBuf>,
        matched: &[PathBuf],
        now: Instant,
    ) -> Vec<PathBuf> {
        let (extra, rest): (Vec<PathBuf>, Vec<PathBuf>) = paths
            .into_iter()
            .partition(|p| self.config.extra_root_of(p, &cx.workspace).is_some());
        if extra.iter().any(|p| !matched.contains(p)) {
            let targets: Vec<TargetId> = self
                .targets
                .iter()
                .filter(|t| !self.held.contains(*t))
                .cloned()
                .collect();
            self.restart_current(cx, &targets, "a file under --watch changed", now);
        }
        rest
    }
}
