//! Every transition of [`Job`], driven by hand with a recorder instead of real processes.

use super::*;
use crate::workspace::RunKind;
use std::path::PathBuf;

/// Records what the job asked of the OS; hands out pids 100, 101, … and keys 1, 2, ….
#[derive(Default)]
struct Recorder {
    spawned: Vec<(String, u64)>,
    signals: Vec<(u32, Signal)>,
    forgotten: Vec<u32>,
    events: Vec<Event>,
    /// Spawns asked for, not yet answered.
    pending: Vec<ProcKey>,
    next_pid: u32,
    next_key: ProcKey,
    fail_spawn: bool,
}

impl Recorder {
    /// Answers every spawn asked for, as the engine's loop does right after the action.
    fn answer(&mut self, job: &mut Job, now: Instant) {
        for key in std::mem::take(&mut self.pending) {
            if self.fail_spawn {
                job.on_spawn_failed(key, "exec format error", self);
            } else {
                self.next_pid += 1;
                let pid = 99 + self.next_pid;
                job.on_spawned(key, pid, self, now);
            }
        }
    }
}

/// [`Job::replace`], with the spawns it asks for answered.
fn replace(job: &mut Job, staged: Staged, reason: &str, procs: &mut Recorder, now: Instant) {
    job.replace(staged, reason, procs, now);
    procs.answer(job, now);
}

/// [`Job::on_exit`], with the spawns it asks for answered.
fn on_exit(
    job: &mut Job,
    key: ProcKey,
    status: ExitInfo,
    procs: &mut Recorder,
    now: Instant,
) -> bool {
    let claimed = job.on_exit(key, status, procs);
    procs.answer(job, now);
    claimed
}

impl Processes for Recorder {
    fn spawn(&mut self, target: &TargetId, staged: &Staged, key: ProcKey) -> Result<()> {
        if !self.fail_spawn {
            self.spawned.push((target.name.clone(), staged.id));
        }
        self.pending.push(key);
        Ok(())
    }
    fn event(&mut self, event: Event) {
        self.events.push(event);
    }
    fn signal_group(&mut self, pgid: u32, signal: Signal) {
        self.signals.push((pgid, signal));
    }
    fn forget(&mut self, _key: ProcKey, pgid: u32) {
        self.forgotten.push(pgid);
    }
    fn next_key(&mut self) -> ProcKey {
        self.next_key += 1;
        self.next_key
    }
}

const STOP: StopPolicy = StopPolicy {
    signal: Signal::TERM,
    timeout: Duration::from_secs(5),
};

fn job_with(handoff: Handoff, ready_timeout: Option<Duration>) -> Job {
    Job::new(
        TargetId {
            package: "api".into(),
            name: "api".into(),
            kind: RunKind::Bin,
        },
        JobPolicy {
            stop: STOP,
            handoff,
            ready_timeout,
        },
    )
}

/// Stop-then-start, ready at start: a program that binds its own port.
fn job() -> Job {
    job_with(Handoff::StopFirst, None)
}

/// Overlapping, with a readiness check: a server on a socket cargo hot holds.
fn overlapping() -> Job {
    job_with(Handoff::Overlap, Some(Duration::from_secs(30)))
}

/// An overlapping job whose first process (pid 100, key 1, build 1) is ready and serving.
fn overlapping_serving() -> (Job, Recorder, Instant) {
    let (mut job, mut procs, now) = (overlapping(), Recorder::default(), Instant::now());
    replace(&mut job, staged(1), "start", &mut procs, now);
    assert!(job.on_ready(1, &mut procs, now));
    procs.events.clear();
    (job, procs, now)
}

fn staged(id: u64) -> Staged {
    Staged {
        path: PathBuf::from(format!("/t/hot/api-{id:016x}")),
        id,
        source: Default::default(),
    }
}

fn exited(code: i32) -> ExitInfo {
    ExitInfo {
        code: Some(code),
        signal: None,
    }
}

/// The events as short words, to compare sequences at a glance.
fn names(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e {
            Event::Started { pid, .. } => format!("started {pid}"),
            Event::Ready { pid, .. } => format!("ready {pid}"),
            Event::Stopping { pid, reason, .. } => format!("stopping {pid} ({reason})"),
            Event::Killed { pid, .. } => format!("killed {pid}"),
            Event::Exited { pid, expected, .. } => format!("exited {pid} expected={expected}"),
            Event::StartFailed {
                pid,
                reason,
                still_serving,
                ..
            } => format!("start-failed {pid} ({reason}) serving={still_serving:?}"),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn first_build_starts_the_target() {
    let (mut job, mut procs, now) = (job(), Recorder::default(), Instant::now());
    replace(&mut job, staged(1), "change", &mut procs, now);
    assert_eq!(job.serving().map(|r| r.pid), Some(100));
    assert_eq!(procs.spawned, [("api".to_string(), 1)]);
    assert_eq!(names(&procs.events), ["started 100", "ready 100"]);
}

#[test]
fn stop_first_stops_then_starts_the_new_build() {
    let (mut job, mut procs, now) = (job(), Recorder::default(), Instant::now());
    replace(&mut job, staged(1), "start", &mut procs, now);
    replace(&mut job, staged(2), "core changed", &mut procs, now);
    assert_eq!(procs.signals, [(100, Signal::TERM)]);
    assert_eq!(
        procs.spawned.len(),
        1,
        "the new build waits for the old process to exit"
    );
    assert!(on_exit(&mut job, 1, exited(0), &mut procs, now));
    assert_eq!(procs.spawned.last(), Some(&("api".to_string(), 2)));
    assert_eq!(
        procs.signals.last(),
        Some(&(100, Signal::KILL)),
        "leftover group members are killed"
    );
    assert_eq!(procs.forgotten, [100]);
    assert_eq!(job.serving().map(|r| r.pid), Some(101));
}

#[test]
fn stop_first_a_newer_build_during_a_stop_wins() {
    let (mut job, mut procs, now) = (job(), Recorder::default(), Instant::now());
    replace(&mut job, staged(1), "start", &mut procs, now);
    replace(&mut job, staged(2), "change", &mut procs, now);
    replace(&mut job, staged(3), "change", &mut procs, now);
    on_exit(&mut job, 1, exited(0), &mut procs, now);
    assert_eq!(procs.spawned.last(), Some(&("api".to_string(), 3)));
    assert_eq!(procs.spawned.len(), 2, "build 2 is never started");
}

#[test]
fn overlap_stops_the_old_only_once_the_new_is_ready() {
    let (mut job, mut procs, now) = overlapping_serving();

    replace(&mut job, staged(2), "core changed", &mut procs, now);
    assert_eq!(procs.spawned.len(), 2, "the new one starts beside the old");
    assert!(
        procs.signals.is_empty(),
        "the old one keeps serving meanwhile"
    );
    assert_eq!(job.serving().map(|r| r.pid), Some(100));
    assert_eq!(job.starting().map(|r| r.pid), Some(101));
    assert_eq!(job.newest_staged().map(|s| s.id), Some(2));

    assert!(job.on_ready(2, &mut procs, now));
    assert_eq!(procs.signals, [(100, Signal::TERM)]);
    assert_eq!(job.serving().map(|r| r.pid), Some(101));
    assert!(on_exit(&mut job, 1, exited(0), &mut procs, now));
    assert_eq!(
        names(&procs.events),
        [
            "started 101",
            "ready 101",
            "stopping 100 (new build ready)",
            "exited 100 expected=true"
        ]
    );
}

#[test]
fn overlap_a_new_build_that_crashes_at_start_leaves_the_old_serving() {
    let (mut job, mut procs, now) = overlapping_serving();
    replace(&mut job, staged(2), "change", &mut procs, now);
    assert!(on_exit(&mut job, 2, exited(3), &mut procs, now));
    assert_eq!(
        names(&procs.events),
        [
            "started 101",
            "exited 101 expected=false",
            "start-failed 101 (exited with exit status 3 before it was ready) serving=Some(100)"
        ]
    );
    assert_eq!(job.serving().map(|r| r.pid), Some(100));
    assert_eq!(job.crashed, None, "the job still serves");
    assert_eq!(
        job.newest_staged().map(|s| s.id),
        Some(1),
        "the next build is compared with what serves, so it tries again"
    );
    assert!(!procs.signals.contains(&(100, Signal::TERM)));
}

#[test]
fn overlap_a_new_build_never_ready_is_stopped_at_the_timeout() {
    let (mut job, mut procs, now) = overlapping_serving();
    replace(&mut job, staged(2), "change", &mut procs, now);
    let deadline = job.deadline().expect("a starting process has a deadline");
    assert_eq!(deadline, now + Duration::from_secs(30));
    job.on_deadline(&mut procs, now + Duration::from_secs(29));
    assert!(job.starting().is_some(), "not yet");
    job.on_deadline(&mut procs, deadline);
    assert_eq!(
        names(&procs.events),
        [
            "started 101",
            "start-failed 101 (not ready within 30.0s) serving=Some(100)",
            "stopping 101 (not ready within 30.0s)"
        ]
    );
    assert_eq!(procs.signals, [(101, Signal::TERM)]);
    assert_eq!(job.serving().map(|r| r.pid), Some(100));
    // A late readiness report of the stopped process changes nothing.
    assert!(!job.on_ready(2, &mut procs, now));
    assert_eq!(job.serving().map(|r| r.pid), Some(100));
}

#[test]
fn overlap_a_newer_build_supersedes_one_still_starting() {
    let (mut job, mut procs, now) = overlapping_serving();
    replace(&mut job, staged(2), "change", &mut procs, now);
    replace(&mut job, staged(3), "change", &mut procs, now);
    assert_eq!(procs.signals, [(101, Signal::TERM)], "only the unready one");
    assert_eq!(job.starting().map(|r| r.pid), Some(102));
    assert_eq!(job.serving().map(|r| r.pid), Some(100));
    let kept: Vec<u64> = job.staged_in_use().map(|s| s.id).collect();
    assert_eq!(kept, [1, 3, 2], "serving, starting, retiring");
}

#[test]
fn stop_first_with_a_readiness_check_has_nothing_serving_meanwhile() {
    let (mut job, mut procs, now) = (
        job_with(Handoff::StopFirst, Some(Duration::from_secs(30))),
        Recorder::default(),
        Instant::now(),
    );
    replace(&mut job, staged(1), "start", &mut procs, now);
    job.on_ready(1, &mut procs, now);
    replace(&mut job, staged(2), "change", &mut procs, now);
    on_exit(&mut job, 1, exited(0), &mut procs, now);
    assert_eq!(job.starting().map(|r| r.pid), Some(101));
    assert!(job.serving().is_none());
    on_exit(&mut job, 2, exited(1), &mut procs, now);
    assert_eq!(job.crashed, Some(exited(1)), "nothing serves: it crashed");
    assert!(names(&procs.events)
        .last()
        .unwrap()
        .ends_with("before it was ready) serving=None"));
}

#[test]
fn stop_timeout_escalates_to_kill_once() {
    let (mut job, mut procs, now) = (job(), Recorder::default(), Instant::now());
    replace(&mut job, staged(1), "start", &mut procs, now);
    job.stop("quit", &mut procs, now);
    let deadline = job.deadline().expect("a stopping job has a deadline");
    assert_eq!(deadline, now + Duration::from_secs(5));
    job.on_deadline(&mut procs, now + Duration::from_secs(1));
    assert_eq!(procs.signals, [(100, Signal::TERM)], "not yet");
    job.on_deadline(&mut procs, deadline);
    job.on_deadline(&mut procs, deadline + Duration::from_secs(1));
    assert_eq!(procs.signals, [(100, Signal::TERM), (100, Signal::KILL)]);
    assert_eq!(job.deadline(), None);
    let killed = ExitInfo {
        code: None,
        signal: Some(9),
    };
    on_exit(&mut job, 1, killed, &mut procs, now);
    assert!(!job.is_alive());
    assert_eq!(procs.spawned.len(), 1, "a stopped job stays down");
}

#[test]
fn stop_ends_both_the_serving_and_the_starting_process() {
    let (mut job, mut procs, now) = overlapping_serving();
    replace(&mut job, staged(2), "change", &mut procs, now);
    job.stop("quit", &mut procs, now);
    assert_eq!(procs.signals, [(101, Signal::TERM), (100, Signal::TERM)]);
    job.kill_now(&mut procs);
    assert_eq!(procs.signals.len(), 4, "a second Ctrl-C kills both at once");
    on_exit(&mut job, 1, exited(0), &mut procs, now);
    assert!(job.is_alive());
    on_exit(&mut job, 2, exited(0), &mut procs, now);
    assert!(!job.is_alive());
}

#[test]
fn exiting_on_its_own_waits_for_the_next_change() {
    let (mut job, mut procs, now) = (job(), Recorder::default(), Instant::now());
    replace(&mut job, staged(1), "start", &mut procs, now);
    on_exit(&mut job, 1, exited(3), &mut procs, now);
    assert_eq!(job.crashed, Some(exited(3)));
    assert!(!job.is_alive());
    assert!(matches!(
        procs.events.last(),
        Some(Event::Exited {
            expected: false,
            code: Some(3),
            ..
        })
    ));
    assert_eq!(procs.spawned.len(), 1, "no restart loop");
    replace(&mut job, staged(2), "change", &mut procs, now);
    assert!(job.serving().is_some());
    assert_eq!(job.crashed, None);
}

#[test]
fn exit_of_an_unknown_key_is_not_ours() {
    let (mut job, mut procs, now) = (job(), Recorder::default(), Instant::now());
    replace(&mut job, staged(1), "start", &mut procs, now);
    assert!(!on_exit(&mut job, 42, exited(0), &mut procs, now));
    assert!(job.serving().is_some());
}

#[test]
fn a_failed_spawn_is_reported_and_leaves_the_job_idle() {
    let (mut job, now) = (job(), Instant::now());
    let mut procs = Recorder {
        fail_spawn: true,
        ..Recorder::default()
    };
    replace(&mut job, staged(1), "start", &mut procs, now);
    assert!(!job.is_alive());
    assert!(
        matches!(&procs.events[0], Event::Error { message } if message.contains("exec format error"))
    );
}

/// A stop or ready timeout too large for an `Instant` (the old `--stop-timeout
/// 9999999999999999999s`) made SIGTERM panic; deadlines now saturate.
#[test]
fn huge_timeouts_never_overflow_a_deadline() {
    let mut job = job_with(Handoff::Overlap, Some(Duration::MAX));
    job.set_policy(JobPolicy {
        stop: StopPolicy {
            signal: Signal::TERM,
            timeout: Duration::MAX,
        },
        ..job.policy()
    });
    let (mut procs, now) = (Recorder::default(), Instant::now());
    replace(&mut job, staged(1), "start", &mut procs, now);
    assert!(job.deadline().is_some_and(|d| d > now));
    job.stop("quit", &mut procs, now);
    assert!(job.deadline().is_some_and(|d| d > now));
    assert_eq!(procs.signals, vec![(100, Signal::TERM)]);
}

/// A proxied job (`Handoff::Drain`) whose first process (pid 100, key 1) serves.
fn draining_serving() -> (Job, Recorder, Instant) {
    let (mut job, mut procs, now) = (
        job_with(Handoff::Drain, Some(Duration::from_secs(30))),
        Recorder::default(),
        Instant::now(),
    );
    replace(&mut job, staged(1), "start", &mut procs, now);
    assert!(job.on_ready(1, &mut procs, now));
    procs.events.clear();
    (job, procs, now)
}

#[test]
fn drain_stops_the_old_only_once_it_has_drained() {
    let (mut job, mut procs, now) = draining_serving();
    replace(&mut job, staged(2), "core changed", &mut procs, now);
    assert_eq!(procs.spawned.len(), 2, "the new one starts beside the old");
    assert!(job.on_ready(2, &mut procs, now));
    assert!(
        procs.signals.is_empty(),
        "the old one finishes its requests"
    );
    assert_eq!(job.serving().map(|r| r.pid), Some(101));
    assert_eq!(job.draining().map(|r| r.pid).collect::<Vec<_>>(), [100]);
    assert!(job.is_alive());
    assert_eq!(
        job.staged_in_use().count(),
        2,
        "the old copy is still in use"
    );

    assert!(!job.on_drained(2, &mut procs, now), "2 serves");
    assert!(job.on_drained(1, &mut procs, now));
    assert_eq!(procs.signals, [(100, Signal::TERM)]);
    assert!(on_exit(&mut job, 1, exited(0), &mut procs, now));
    assert_eq!(
        names(&procs.events),
        [
            "started 101",
            "ready 101",
            "stopping 100 (new build ready, requests answered)",
            "exited 100 expected=true"
        ]
    );
    assert_eq!(job.draining().count(), 0);
}

#[test]
fn drain_quit_stops_draining_processes_too() {
    let (mut job, mut procs, now) = draining_serving();
    replace(&mut job, staged(2), "change", &mut procs, now);
    job.on_ready(2, &mut procs, now);
    job.stop("quit", &mut procs, now);
    let mut stopped: Vec<u32> = procs.signals.iter().map(|(pid, _)| *pid).collect();
    stopped.sort();
    assert_eq!(stopped, [100, 101]);
    assert_eq!(job.draining().count(), 0);
}

#[test]
fn drain_a_draining_process_that_exits_on_its_own_is_gone() {
    let (mut job, mut procs, now) = draining_serving();
    replace(&mut job, staged(2), "change", &mut procs, now);
    job.on_ready(2, &mut procs, now);
    assert!(on_exit(&mut job, 1, exited(1), &mut procs, now));
    assert_eq!(
        names(&procs.events).last().unwrap(),
        "exited 100 expected=false"
    );
    assert!(job.crashed.is_none(), "the new one serves");
    assert!(!job.on_drained(1, &mut procs, now));
}
