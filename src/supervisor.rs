//! Supervising: the life of one target's process as a state machine.
//!
//! A [`Job`] is driven by three commands from the event loop — [`Job::replace`] (a good build
//! produced a new executable), [`Job::stop`] (quit), [`Job::on_exit`] (its process ended) —
//! and by [`Job::on_deadline`] when a stop takes too long. The side effects (spawning,
//! signalling) go through the [`Processes`] trait, so every transition is unit-tested with a
//! fake that records what it was asked to do, and no test has to sleep.
//!
//! Policy, in one place: a target that exits on its own stays down until a change rebuilds it
//! (no restart loops); a stop is the configured signal to the whole process group, then
//! SIGKILL after the stop timeout; and once the leader is gone the group gets SIGKILL too, so
//! grandchildren never outlive their target.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::build::Staged;
use crate::process::{ExitInfo, ProcKey, Signal};
use crate::ui::Event;
use crate::workspace::TargetId;

/// What a job needs from the operating system; the engine's implementation spawns real
/// processes, tests use a recorder.
pub trait Processes {
    /// Starts `target` from `staged`, returning its pid (= its process group id).
    fn spawn(&mut self, target: &TargetId, staged: &Staged, key: ProcKey) -> Result<u32>;
    /// Sends `signal` to the process group `pgid`.
    fn signal_group(&mut self, pgid: u32, signal: Signal);
    /// The group's leader was reaped: forget it (no more kill-on-death tracking).
    fn forget(&mut self, pgid: u32);
    /// A fresh key for the next process, echoed back in its exit event.
    fn next_key(&mut self) -> ProcKey;
}

/// How a job stops.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StopPolicy {
    pub signal: Signal,
    pub timeout: Duration,
}

#[derive(Debug)]
pub struct Job {
    pub target: TargetId,
    pub state: JobState,
    /// The newest good executable, started after a stop or after the next change.
    pub latest: Option<Staged>,
    policy: StopPolicy,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Running {
    pub pid: u32,
    pub key: ProcKey,
    pub started: Instant,
    pub staged: Staged,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JobState {
    /// Never started (no good build yet), or stopped for good.
    Idle,
    Running(Running),
    Stopping {
        run: Running,
        deadline: Instant,
        killed: bool,
        then: AfterStop,
    },
    /// Exited on its own; waits for the next change.
    Exited {
        status: ExitInfo,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterStop {
    Start(Staged),
    StayDown,
}

impl Job {
    pub fn new(target: TargetId, policy: StopPolicy) -> Job {
        Job {
            target,
            state: JobState::Idle,
            latest: None,
            policy,
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self.state, JobState::Running(_))
    }

    /// Has a process (running or on its way out).
    pub fn is_alive(&self) -> bool {
        matches!(self.state, JobState::Running(_) | JobState::Stopping { .. })
    }

    /// The executable the current process runs, if any.
    pub fn running_staged(&self) -> Option<&Staged> {
        match &self.state {
            JobState::Running(run) | JobState::Stopping { run, .. } => Some(&run.staged),
            _ => None,
        }
    }

    /// A good build produced `staged`: run it, replacing the current process if there is one.
    pub fn replace(
        &mut self,
        staged: Staged,
        reason: &str,
        procs: &mut dyn Processes,
        events: &mut Vec<Event>,
        now: Instant,
    ) {
        self.latest = Some(staged.clone());
        match &mut self.state {
            JobState::Running(_) => {
                self.begin_stop(AfterStop::Start(staged), reason, procs, events, now)
            }
            // Already on its way out: start the newest build once it is gone.
            JobState::Stopping { then, .. } => *then = AfterStop::Start(staged),
            JobState::Idle | JobState::Exited { .. } => self.start(staged, procs, events, now),
        }
    }

    /// Stops the process for good (quit, or the target was deselected).
    pub fn stop(
        &mut self,
        reason: &str,
        procs: &mut dyn Processes,
        events: &mut Vec<Event>,
        now: Instant,
    ) {
        match &mut self.state {
            JobState::Running(_) => {
                self.begin_stop(AfterStop::StayDown, reason, procs, events, now)
            }
            JobState::Stopping { then, .. } => *then = AfterStop::StayDown,
            JobState::Idle | JobState::Exited { .. } => {}
        }
    }

    /// Kills the process group now, without waiting for the stop timeout (a second Ctrl-C).
    pub fn kill_now(&mut self, procs: &mut dyn Processes, events: &mut Vec<Event>) {
        match &mut self.state {
            JobState::Stopping { run, killed, .. } if !*killed => {
                procs.signal_group(run.pid, Signal::KILL);
                *killed = true;
                events.push(Event::Killed {
                    target: self.target.to_string(),
                    pid: run.pid,
                });
            }
            _ => {}
        }
    }

    /// The process with `key` ended. Returns false if the key is not this job's.
    pub fn on_exit(
        &mut self,
        key: ProcKey,
        status: ExitInfo,
        procs: &mut dyn Processes,
        events: &mut Vec<Event>,
        now: Instant,
    ) -> bool {
        let (run, expected, then) = match &self.state {
            JobState::Running(run) if run.key == key => (run.clone(), false, None),
            JobState::Stopping { run, then, .. } if run.key == key => {
                (run.clone(), true, Some(then.clone()))
            }
            _ => return false,
        };
        // The leader is gone; whatever it forked must go with it.
        procs.signal_group(run.pid, Signal::KILL);
        procs.forget(run.pid);
        events.push(Event::Exited {
            target: self.target.to_string(),
            pid: run.pid,
            code: status.code,
            signal: status.signal,
            expected,
        });
        match then {
            None => self.state = JobState::Exited { status },
            Some(AfterStop::Start(staged)) => {
                self.state = JobState::Idle;
                self.start(staged, procs, events, now);
            }
            Some(AfterStop::StayDown) => self.state = JobState::Idle,
        }
        true
    }

    /// When this job next needs attention (a stop timing out).
    pub fn deadline(&self) -> Option<Instant> {
        match &self.state {
            JobState::Stopping {
                deadline,
                killed: false,
                ..
            } => Some(*deadline),
            _ => None,
        }
    }

    /// Escalates a stop whose timeout has passed to SIGKILL.
    pub fn on_deadline(
        &mut self,
        procs: &mut dyn Processes,
        events: &mut Vec<Event>,
        now: Instant,
    ) {
        if let JobState::Stopping {
            deadline, killed, ..
        } = &self.state
        {
            if !*killed && *deadline <= now {
                self.kill_now(procs, events);
            }
        }
    }

    fn begin_stop(
        &mut self,
        then: AfterStop,
        reason: &str,
        procs: &mut dyn Processes,
        events: &mut Vec<Event>,
        now: Instant,
    ) {
        let JobState::Running(run) = std::mem::replace(&mut self.state, JobState::Idle) else {
            unreachable!("begin_stop is only called on a running job");
        };
        procs.signal_group(run.pid, self.policy.signal);
        events.push(Event::Stopping {
            target: self.target.to_string(),
            pid: run.pid,
            signal: self.policy.signal.name(),
            reason: reason.to_string(),
        });
        self.state = JobState::Stopping {
            run,
            deadline: now + self.policy.timeout,
            killed: false,
            then,
        };
    }

    fn start(
        &mut self,
        staged: Staged,
        procs: &mut dyn Processes,
        events: &mut Vec<Event>,
        now: Instant,
    ) {
        let key = procs.next_key();
        match procs.spawn(&self.target, &staged, key) {
            Ok(pid) => {
                events.push(Event::Started {
                    target: self.target.to_string(),
                    pid,
                    executable: staged.path.clone(),
                });
                self.state = JobState::Running(Running {
                    pid,
                    key,
                    started: now,
                    staged,
                });
            }
            Err(error) => {
                events.push(Event::Error {
                    message: format!("failed to start {}: {error:#}", self.target),
                });
                self.state = JobState::Idle;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::RunKind;
    use std::path::PathBuf;

    /// Records what the job asked of the OS; hands out pids 100, 101, ….
    #[derive(Default)]
    struct Recorder {
        spawned: Vec<(String, u64)>,
        signals: Vec<(u32, Signal)>,
        forgotten: Vec<u32>,
        next_pid: u32,
        next_key: ProcKey,
        fail_spawn: bool,
    }

    impl Processes for Recorder {
        fn spawn(&mut self, target: &TargetId, staged: &Staged, _key: ProcKey) -> Result<u32> {
            if self.fail_spawn {
                anyhow::bail!("exec format error");
            }
            self.spawned.push((target.name.clone(), staged.digest));
            self.next_pid += 1;
            Ok(99 + self.next_pid)
        }
        fn signal_group(&mut self, pgid: u32, signal: Signal) {
            self.signals.push((pgid, signal));
        }
        fn forget(&mut self, pgid: u32) {
            self.forgotten.push(pgid);
        }
        fn next_key(&mut self) -> ProcKey {
            self.next_key += 1;
            self.next_key
        }
    }

    fn job() -> Job {
        Job::new(
            TargetId {
                package: "api".into(),
                name: "api".into(),
                kind: RunKind::Bin,
            },
            StopPolicy {
                signal: Signal::TERM,
                timeout: Duration::from_secs(5),
            },
        )
    }

    fn staged(digest: u64) -> Staged {
        Staged {
            path: PathBuf::from(format!("/t/hot/api-{digest:016x}")),
            digest,
        }
    }

    fn exited(code: i32) -> ExitInfo {
        ExitInfo {
            code: Some(code),
            signal: None,
        }
    }

    #[test]
    fn first_build_starts_the_target() {
        let (mut job, mut procs, mut events, now) =
            (job(), Recorder::default(), vec![], Instant::now());
        job.replace(staged(1), "change", &mut procs, &mut events, now);
        assert!(job.is_running());
        assert_eq!(procs.spawned, [("api".to_string(), 1)]);
        assert!(matches!(events[0], Event::Started { pid: 100, .. }));
    }

    #[test]
    fn replace_stops_then_starts_the_new_build() {
        let (mut job, mut procs, mut events, now) =
            (job(), Recorder::default(), vec![], Instant::now());
        job.replace(staged(1), "start", &mut procs, &mut events, now);
        job.replace(staged(2), "core changed", &mut procs, &mut events, now);
        assert_eq!(procs.signals, [(100, Signal::TERM)]);
        assert_eq!(
            procs.spawned.len(),
            1,
            "the new build waits for the old process to exit"
        );
        assert!(job.on_exit(1, exited(0), &mut procs, &mut events, now));
        assert_eq!(procs.spawned.last(), Some(&("api".to_string(), 2)));
        assert_eq!(
            procs.signals.last(),
            Some(&(100, Signal::KILL)),
            "leftover group members are killed"
        );
        assert_eq!(procs.forgotten, [100]);
        assert!(matches!(&job.state, JobState::Running(r) if r.pid == 101));
    }

    #[test]
    fn a_newer_build_during_a_stop_wins() {
        let (mut job, mut procs, mut events, now) =
            (job(), Recorder::default(), vec![], Instant::now());
        job.replace(staged(1), "start", &mut procs, &mut events, now);
        job.replace(staged(2), "change", &mut procs, &mut events, now);
        job.replace(staged(3), "change", &mut procs, &mut events, now);
        job.on_exit(1, exited(0), &mut procs, &mut events, now);
        assert_eq!(procs.spawned.last(), Some(&("api".to_string(), 3)));
        assert_eq!(procs.spawned.len(), 2, "build 2 is never started");
    }

    #[test]
    fn stop_timeout_escalates_to_kill_once() {
        let (mut job, mut procs, mut events, now) =
            (job(), Recorder::default(), vec![], Instant::now());
        job.replace(staged(1), "start", &mut procs, &mut events, now);
        job.stop("quit", &mut procs, &mut events, now);
        let deadline = job.deadline().expect("a stopping job has a deadline");
        assert_eq!(deadline, now + Duration::from_secs(5));
        job.on_deadline(&mut procs, &mut events, now + Duration::from_secs(1));
        assert_eq!(procs.signals, [(100, Signal::TERM)], "not yet");
        job.on_deadline(&mut procs, &mut events, deadline);
        job.on_deadline(&mut procs, &mut events, deadline + Duration::from_secs(1));
        assert_eq!(procs.signals, [(100, Signal::TERM), (100, Signal::KILL)]);
        assert_eq!(job.deadline(), None);
        job.on_exit(
            1,
            ExitInfo {
                code: None,
                signal: Some(9),
            },
            &mut procs,
            &mut events,
            now,
        );
        assert_eq!(job.state, JobState::Idle);
        assert!(procs.spawned.len() == 1, "a stopped job stays down");
    }

    #[test]
    fn exiting_on_its_own_waits_for_the_next_change() {
        let (mut job, mut procs, mut events, now) =
            (job(), Recorder::default(), vec![], Instant::now());
        job.replace(staged(1), "start", &mut procs, &mut events, now);
        job.on_exit(1, exited(3), &mut procs, &mut events, now);
        assert_eq!(job.state, JobState::Exited { status: exited(3) });
        assert!(matches!(
            events.last(),
            Some(Event::Exited {
                expected: false,
                code: Some(3),
                ..
            })
        ));
        assert_eq!(procs.spawned.len(), 1, "no restart loop");
        job.replace(staged(2), "change", &mut procs, &mut events, now);
        assert!(job.is_running());
    }

    #[test]
    fn exit_of_an_unknown_key_is_not_ours() {
        let (mut job, mut procs, mut events, now) =
            (job(), Recorder::default(), vec![], Instant::now());
        job.replace(staged(1), "start", &mut procs, &mut events, now);
        assert!(!job.on_exit(42, exited(0), &mut procs, &mut events, now));
        assert!(job.is_running());
    }

    #[test]
    fn a_failed_spawn_is_reported_and_leaves_the_job_idle() {
        let (mut job, mut events, now) = (job(), vec![], Instant::now());
        let mut procs = Recorder {
            fail_spawn: true,
            ..Recorder::default()
        };
        job.replace(staged(1), "start", &mut procs, &mut events, now);
        assert_eq!(job.state, JobState::Idle);
        assert!(
            matches!(&events[0], Event::Error { message } if message.contains("exec format error"))
        );
    }
}
