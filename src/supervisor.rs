//! Supervising: the life of one target's processes as a state machine.
//!
//! A [`Job`] is driven by commands from the event loop — [`Job::replace`] (a good build
//! produced a new executable), [`Job::stop`] (quit), [`Job::on_ready`] (a readiness check
//! passed), [`Job::on_exit`] (a process ended) — and by [`Job::on_deadline`] when a start or a
//! stop takes too long. The side effects (spawning, signalling) go through the [`Processes`]
//! trait, so every transition is unit-tested with a fake that records what it was asked to do,
//! and no test has to sleep.
//!
//! A job holds up to three kinds of process at once, which is what makes a restart without
//! downtime possible: the one **serving** (ready), a new one **starting** (not yet ready), and
//! old ones **retiring** (asked to stop, given their stop timeout to finish in-flight work).
//!
//! Policy, in one place:
//! - [`Handoff::Overlap`]: the new process starts while the old one serves; the old one is
//!   asked to stop only once the new one is ready. If the new one exits or is not ready in
//!   time, it is stopped and the old one keeps serving.
//! - [`Handoff::StopFirst`]: the old one stops, then the new one starts (programs that cannot
//!   run twice at once).
//! - [`Handoff::Drain`] (`--proxy`): as `Overlap`, but once the new one is ready the old one
//!   is only **draining** (the proxy sends it no new requests); it is asked to stop when the
//!   caller says it has drained ([`Job::on_drained`]).
//! - A process that exits on its own stays down until a change rebuilds it (no restart loops).
//! - A stop is the configured signal to the whole process group, then SIGKILL after the stop
//!   timeout; once a group's leader is gone the group gets SIGKILL, so grandchildren never
//!   outlive their target.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::build::Staged;
use crate::duration::{deadline_after, human_duration};
use crate::event::Event;
use crate::process::{ExitInfo, ProcKey, Signal};
use crate::workspace::TargetId;

/// What a job needs from the outside world; the engine core turns these into actions for its
/// loop, tests use a recorder.
pub trait Processes {
    /// Asks for `target` to be started from `staged` under `key`. The pid (= its process
    /// group id) comes back through [`Job::on_spawned`], a failure through
    /// [`Job::on_spawn_failed`].
    fn spawn(&mut self, target: &TargetId, staged: &Staged, key: ProcKey) -> Result<()>;
    /// Sends `signal` to the process group `pgid`.
    fn signal_group(&mut self, pgid: u32, signal: Signal);
    /// The process `key`, leader of group `pgid`, was reaped: forget it.
    fn forget(&mut self, key: ProcKey, pgid: u32);
    /// A fresh key for the next process, echoed back in its exit event.
    fn next_key(&mut self) -> ProcKey;
    /// Reports what happened.
    fn event(&mut self, event: Event);
    /// The process `key` (pid `pid`) of `target` is ready and serves from now on.
    fn serve(&mut self, _target: &TargetId, _key: ProcKey, _pid: u32) {}
    /// The process `key` of `target` was replaced ([`Handoff::Drain`]): report
    /// [`Job::on_drained`] once its requests are done.
    fn drain(&mut self, _target: &TargetId, _key: ProcKey) {}
}

/// How a job stops a process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopPolicy {
    pub signal: Signal,
    pub timeout: Duration,
}

/// How a new build takes over from the running process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handoff {
    /// Start the new one beside the old; stop the old once the new is ready.
    Overlap,
    /// Stop the old one, then start the new.
    StopFirst,
    /// Start the new one beside the old; once the new is ready, stop the old when
    /// [`Job::on_drained`] says its requests are done.
    Drain,
}

/// Everything that decides how a job behaves; fixed per target for the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobPolicy {
    pub stop: StopPolicy,
    pub handoff: Handoff,
    /// `None`: ready as soon as started. `Some(t)`: a readiness check must pass within `t`.
    pub ready_timeout: Option<Duration>,
}

#[derive(Debug)]
pub struct Job {
    pub target: TargetId,
    /// The newest good executable, started after a stop or after the next change.
    pub latest: Option<Staged>,
    /// How the last process ended on its own, while the job has nothing serving.
    pub crashed: Option<ExitInfo>,
    policy: JobPolicy,
    serving: Option<Running>,
    starting: Option<Starting>,
    retiring: Vec<Retiring>,
    /// Replaced processes not yet asked to stop ([`Handoff::Drain`]).
    draining: Vec<Running>,
    /// With [`Handoff::StopFirst`]: started once every retiring process is gone.
    queued: Option<Staged>,
    /// Asked to be spawned; the pid is not known yet.
    launching: Vec<Launching>,
}

/// A process asked for, not yet started.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Launching {
    key: ProcKey,
    staged: Staged,
    /// Stopped before it started (superseded, or quit): retired as soon as it is.
    abandon: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub pid: u32,
    pub key: ProcKey,
    pub started: Instant,
    pub staged: Staged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Starting {
    run: Running,
    ready_deadline: Instant,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Retiring {
    run: Running,
    kill_deadline: Instant,
    killed: bool,
}

impl Job {
    pub fn new(target: TargetId, policy: JobPolicy) -> Job {
        Job {
            target,
            latest: None,
            crashed: None,
            policy,
            serving: None,
            starting: None,
            retiring: Vec::new(),
            draining: Vec::new(),
            queued: None,
            launching: Vec::new(),
        }
    }

    pub fn policy(&self) -> JobPolicy {
        self.policy
    }

    /// A reloaded configuration changed how this target is run. Processes already starting or
    /// stopping keep the deadlines they were given; the next decision uses `policy`.
    pub fn set_policy(&mut self, policy: JobPolicy) {
        self.policy = policy;
    }

    /// The process that serves (is ready), if any.
    pub fn serving(&self) -> Option<&Running> {
        self.serving.as_ref()
    }

    /// The new process that is not ready yet, if any.
    pub fn starting(&self) -> Option<&Running> {
        self.starting.as_ref().map(|s| &s.run)
    }

    /// Has a process (serving, starting or on its way out).
    pub fn is_alive(&self) -> bool {
        self.serving.is_some()
            || self.starting.is_some()
            || !self.retiring.is_empty()
            || !self.draining.is_empty()
            || !self.launching.is_empty()
    }

    /// Replaced processes waiting for [`Job::on_drained`].
    pub fn draining(&self) -> impl Iterator<Item = &Running> {
        self.draining.iter()
    }

    /// The executable the newest process runs: what a new build is compared with to decide
    /// whether a restart would change anything.
    pub fn newest_staged(&self) -> Option<&Staged> {
        let launching = self.launching.iter().rev().find(|l| l.abandon.is_none());
        if let Some(launching) = launching {
            return Some(&launching.staged);
        }
        self.starting
            .as_ref()
            .map(|s| &s.run.staged)
            .or(self.serving.as_ref().map(|r| &r.staged))
    }

    /// Every executable a process of this job still runs (staged copies to keep).
    pub fn staged_in_use(&self) -> impl Iterator<Item = &Staged> {
        self.serving
            .iter()
            .chain(self.starting.iter().map(|s| &s.run))
            .chain(self.retiring.iter().map(|r| &r.run))
            .chain(self.draining.iter())
            .map(|r| &r.staged)
            .chain(self.queued.iter())
            .chain(self.launching.iter().map(|l| &l.staged))
    }

    /// A good build produced `staged`: run it, taking over from the current process.
    pub fn replace(
        &mut self,
        staged: Staged,
        reason: &str,
        procs: &mut dyn Processes,
        now: Instant,
    ) {
        self.latest = Some(staged.clone());
        if let Some(starting) = self.starting.take() {
            self.retire(starting.run, "superseded by a newer build", procs, now);
        }
        for launching in &mut self.launching {
            launching.abandon = Some("superseded by a newer build".into());
        }
        match self.policy.handoff {
            Handoff::Overlap | Handoff::Drain => self.start(staged, procs),
            Handoff::StopFirst => {
                if let Some(serving) = self.serving.take() {
                    self.retire(serving, reason, procs, now);
                }
                if self.retiring.is_empty() {
                    self.start(staged, procs);
                } else {
                    self.queued = Some(staged);
                }
            }
        }
    }

    /// Stops every process for good (quit, or the target was deselected).
    pub fn stop(&mut self, reason: &str, procs: &mut dyn Processes, now: Instant) {
        self.queued = None;
        for launching in &mut self.launching {
            launching.abandon = Some(reason.to_string());
        }
        let draining = std::mem::take(&mut self.draining);
        for run in [self.starting.take().map(|s| s.run), self.serving.take()]
            .into_iter()
            .flatten()
            .chain(draining)
        {
            self.retire(run, reason, procs, now);
        }
    }

    /// Kills every retiring process group now, without waiting for the stop timeout.
    pub fn kill_now(&mut self, procs: &mut dyn Processes) {
        for retiring in self.retiring.iter_mut().filter(|r| !r.killed) {
            procs.signal_group(retiring.run.pid, Signal::KILL);
            retiring.killed = true;
            procs.event(Event::Killed {
                target: self.target.to_string(),
                pid: retiring.run.pid,
            });
        }
    }

    /// The readiness check of process `key` passed. Returns false if it is not this job's
    /// starting process (a late report about a process already stopped).
    pub fn on_ready(&mut self, key: ProcKey, procs: &mut dyn Processes, now: Instant) -> bool {
        if self.starting.as_ref().is_none_or(|s| s.run.key != key) {
            return false;
        }
        let run = self.starting.take().expect("checked").run;
        self.promote(run, procs, now);
        true
    }

    /// The replaced process `key` has drained: ask it to stop. Returns false if it is not one
    /// of this job's draining processes.
    pub fn on_drained(&mut self, key: ProcKey, procs: &mut dyn Processes, now: Instant) -> bool {
        let Some(i) = self.draining.iter().position(|r| r.key == key) else {
            return false;
        };
        let run = self.draining.remove(i);
        self.retire(run, "new build ready, requests answered", procs, now);
        true
    }

    /// The process with `key` ended. Returns false if the key is not this job's.
    pub fn on_exit(&mut self, key: ProcKey, status: ExitInfo, procs: &mut dyn Processes) -> bool {
        let target = self.target.to_string();
        let mut start_failed = None;
        let (run, expected) = if self.serving.as_ref().is_some_and(|r| r.key == key) {
            let run = self.serving.take().expect("checked");
            self.crashed = Some(status);
            (run, false)
        } else if self.starting.as_ref().is_some_and(|s| s.run.key == key) {
            let run = self.starting.take().expect("checked").run;
            start_failed = Some(Event::StartFailed {
                target: target.clone(),
                pid: run.pid,
                reason: format!("exited with {status} before it was ready"),
                still_serving: self.serving.as_ref().map(|r| r.pid),
            });
            if self.serving.is_none() {
                self.crashed = Some(status);
            }
            (run, false)
        } else if let Some(i) = self.retiring.iter().position(|r| r.run.key == key) {
            (self.retiring.remove(i).run, true)
        } else if let Some(i) = self.draining.iter().position(|r| r.key == key) {
            (self.draining.remove(i), false)
        } else {
            return false;
        };
        // The leader is gone; whatever it forked must go with it.
        procs.signal_group(run.pid, Signal::KILL);
        procs.forget(key, run.pid);
        procs.event(Event::Exited {
            target,
            pid: run.pid,
            code: status.code,
            signal: status.signal,
            expected,
        });
        if let Some(event) = start_failed {
            procs.event(event);
        }
        if self.retiring.is_empty() {
            if let Some(staged) = self.queued.take() {
                self.start(staged, procs);
            }
        }
        true
    }

    /// When this job next needs attention: a start or a stop timing out.
    pub fn deadline(&self) -> Option<Instant> {
        let ready = self.starting.as_ref().map(|s| s.ready_deadline);
        let kills = self
            .retiring
            .iter()
            .filter(|r| !r.killed)
            .map(|r| r.kill_deadline);
        ready.into_iter().chain(kills).min()
    }

    /// A new process not ready in time is stopped (the old one keeps serving); a stop whose
    /// timeout has passed escalates to SIGKILL.
    pub fn on_deadline(&mut self, procs: &mut dyn Processes, now: Instant) {
        if self
            .starting
            .as_ref()
            .is_some_and(|s| s.ready_deadline <= now)
        {
            let run = self.starting.take().expect("checked").run;
            let timeout = self.policy.ready_timeout.unwrap_or_default();
            let reason = format!("not ready within {}", human_duration(timeout));
            procs.event(Event::StartFailed {
                target: self.target.to_string(),
                pid: run.pid,
                reason: reason.clone(),
                still_serving: self.serving.as_ref().map(|r| r.pid),
            });
            self.retire(run, &reason, procs, now);
        }
        for retiring in self
            .retiring
            .iter_mut()
            .filter(|r| !r.killed && r.kill_deadline <= now)
        {
            procs.signal_group(retiring.run.pid, Signal::KILL);
            retiring.killed = true;
            procs.event(Event::Killed {
                target: self.target.to_string(),
                pid: retiring.run.pid,
            });
        }
    }

    fn retire(&mut self, run: Running, reason: &str, procs: &mut dyn Processes, now: Instant) {
        procs.signal_group(run.pid, self.policy.stop.signal);
        procs.event(Event::Stopping {
            target: self.target.to_string(),
            pid: run.pid,
            signal: self.policy.stop.signal.name(),
            reason: reason.to_string(),
        });
        self.retiring.push(Retiring {
            run,
            kill_deadline: deadline_after(now, self.policy.stop.timeout),
            killed: false,
        });
    }

    fn start(&mut self, staged: Staged, procs: &mut dyn Processes) {
        let key = procs.next_key();
        if let Err(error) = procs.spawn(&self.target, &staged, key) {
            procs.event(Event::Error {
                message: format!("failed to start {}: {error:#}", self.target),
            });
            return;
        }
        self.launching.push(Launching {
            key,
            staged,
            abandon: None,
        });
    }

    /// The process `key` was started with `pid`. Returns false if the key is not this job's.
    pub fn on_spawned(
        &mut self,
        key: ProcKey,
        pid: u32,
        procs: &mut dyn Processes,
        now: Instant,
    ) -> bool {
        let Some(i) = self.launching.iter().position(|l| l.key == key) else {
            return false;
        };
        let launching = self.launching.remove(i);
        procs.event(Event::Started {
            target: self.target.to_string(),
            pid,
            executable: launching.staged.path.clone(),
        });
        let run = Running {
            pid,
            key,
            started: now,
            staged: launching.staged,
        };
        if let Some(reason) = launching.abandon {
            self.retire(run, &reason, procs, now);
            return true;
        }
        match self.policy.ready_timeout {
            Some(timeout) => {
                self.starting = Some(Starting {
                    run,
                    ready_deadline: deadline_after(now, timeout),
                })
            }
            None => self.promote(run, procs, now),
        }
        true
    }

    /// The process `key` could not be started. Returns false if the key is not this job's.
    pub fn on_spawn_failed(
        &mut self,
        key: ProcKey,
        error: &str,
        procs: &mut dyn Processes,
    ) -> bool {
        let Some(i) = self.launching.iter().position(|l| l.key == key) else {
            return false;
        };
        self.launching.remove(i);
        procs.event(Event::Error {
            message: format!("failed to start {}: {error}", self.target),
        });
        true
    }

    /// `run` is ready: it serves from now on, and the one it replaces is asked to stop.
    fn promote(&mut self, run: Running, procs: &mut dyn Processes, now: Instant) {
        procs.event(Event::Ready {
            target: self.target.to_string(),
            pid: run.pid,
            after_ms: now.saturating_duration_since(run.started).as_millis(),
        });
        self.crashed = None;
        procs.serve(&self.target, run.key, run.pid);
        if let Some(old) = self.serving.replace(run) {
            match self.policy.handoff {
                Handoff::Drain => {
                    procs.drain(&self.target, old.key);
                    self.draining.push(old);
                }
                Handoff::Overlap | Handoff::StopFirst => {
                    self.retire(old, "new build ready", procs, now)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
