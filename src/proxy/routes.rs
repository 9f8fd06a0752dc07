//! Which run of each proxied target gets a new request, and when a replaced run has drained.
//!
//! Pure state, no I/O and no clock of its own: the server asks [`Routes::pick`] for every
//! request and hands back what it took when the response ends; the engine's calls (route,
//! retire, exited) and the timer (`tick`) report the runs that may now be stopped. Keeping
//! it free of hyper and tokio lets every rule below be unit-tested with plain values.
//!
//! The rules:
//! - new requests go to the newest ready run of the target (`current`);
//! - with no ready run, requests wait, unless the last build failed and no run exists at all
//!   (none starting either): then they get the build error at once;
//! - a retired run is drained once its in-flight requests are done and its streams (SSE,
//!   WebSocket) have closed or had their grace period; a run that never finishes its
//!   requests is given up after a hard limit, so a hung request cannot keep it forever.

use std::time::{Duration, Instant};

/// How a forwarded exchange occupies its run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// An ordinary request: waited for when the run is retired.
    Request,
    /// An SSE response or an upgraded (WebSocket) connection: may live forever, so it is
    /// kept only for the stream grace period.
    Stream,
}

/// What to do with a new request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Pick {
    Forward(u16),
    Wait,
    /// The last build failed and no run exists: the rendered error.
    Failed(String),
}

/// A retired run that may now be stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Drained {
    pub target: String,
    pub port: u16,
}

#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How long a retired run keeps its open streams once its requests are done.
    pub stream_grace: Duration,
    /// How long a retired run is waited for at most.
    pub retire_limit: Duration,
}

#[derive(Debug)]
struct Run {
    port: u16,
    ready: bool,
    requests: usize,
    streams: usize,
    retired_at: Option<Instant>,
    /// When its last request finished after retirement: the stream grace counts from here.
    requests_done_at: Option<Instant>,
}

#[derive(Debug)]
struct Target {
    name: String,
    /// The newest ready run: where new requests go.
    current: Option<u16>,
    runs: Vec<Run>,
}

#[derive(Debug)]
pub struct Routes {
    targets: Vec<Target>,
    failed: Option<String>,
    limits: Limits,
}

impl Routes {
    pub fn new(targets: impl IntoIterator<Item = String>, limits: Limits) -> Routes {
        Routes {
            targets: targets
                .into_iter()
                .map(|name| Target {
                    name,
                    current: None,
                    runs: Vec::new(),
                })
                .collect(),
            failed: None,
            limits,
        }
    }

    pub fn index_of(&self, target: &str) -> Option<usize> {
        self.targets.iter().position(|t| t.name == target)
    }

    pub fn name(&self, index: usize) -> &str {
        &self.targets[index].name
    }

    pub fn failed(&self) -> Option<&str> {
        self.failed.as_deref()
    }

    /// A build began: its outcome is not known yet, so requests wait rather than get the
    /// previous error.
    pub fn building(&mut self) {
        self.failed = None;
    }

    pub fn build_failed(&mut self, rendered: String) {
        self.failed = Some(rendered);
    }

    /// A run of `target` is about to start on `port`.
    pub fn starting(&mut self, target: usize, port: u16) {
        self.failed = None;
        let runs = &mut self.targets[target].runs;
        if !runs.iter().any(|r| r.port == port) {
            runs.push(Run {
                port,
                ready: false,
                requests: 0,
                streams: 0,
                retired_at: None,
                requests_done_at: None,
            });
        }
    }

    /// The run on `port` is ready: new requests go to it from now on.
    pub fn route(&mut self, target: usize, port: u16) {
        self.starting(target, port);
        let t = &mut self.targets[target];
        if let Some(run) = t.runs.iter_mut().find(|r| r.port == port) {
            run.ready = true;
        }
        t.current = Some(port);
    }

    pub fn pick(&mut self, target: usize) -> Pick {
        let t = &mut self.targets[target];
        if let Some(port) = t.current {
            if let Some(run) = t.runs.iter_mut().find(|r| r.port == port) {
                run.requests += 1;
                return Pick::Forward(port);
            }
        }
        match &self.failed {
            Some(error) if t.runs.iter().all(|r| r.retired_at.is_some()) => {
                Pick::Failed(error.clone())
            }
            _ => Pick::Wait,
        }
    }

    /// A picked request turned out to be a stream (an SSE response, a 101).
    pub fn became_stream(&mut self, target: usize, port: u16, now: Instant) -> Option<Drained> {
        let run = self.run_mut(target, port)?;
        run.requests = run.requests.saturating_sub(1);
        run.streams += 1;
        self.after_request_done(target, port, now)
    }

    /// A picked exchange ended (its response body finished or was dropped).
    pub fn finished(
        &mut self,
        target: usize,
        port: u16,
        kind: Use,
        now: Instant,
    ) -> Option<Drained> {
        let run = self.run_mut(target, port)?;
        match kind {
            Use::Request => run.requests = run.requests.saturating_sub(1),
            Use::Stream => run.streams = run.streams.saturating_sub(1),
        }
        self.after_request_done(target, port, now)
    }

    fn after_request_done(&mut self, target: usize, port: u16, now: Instant) -> Option<Drained> {
        let run = self.run_mut(target, port)?;
        if run.retired_at.is_some() && run.requests == 0 && run.requests_done_at.is_none() {
            run.requests_done_at = Some(now);
        }
        self.take_if_drained(target, port, now)
    }

    /// The run on `port` is being replaced: no new requests; reported drained when done.
    pub fn retire(&mut self, target: usize, port: u16, now: Instant) -> Option<Drained> {
        let t = &mut self.targets[target];
        if t.current == Some(port) {
            t.current = None;
        }
        let Some(run) = t.runs.iter_mut().find(|r| r.port == port) else {
            // Never seen (it never became ready, or was already drained): nothing to wait for.
            return Some(Drained {
                target: t.name.clone(),
                port,
            });
        };
        if run.retired_at.is_none() {
            run.retired_at = Some(now);
            if run.requests == 0 {
                run.requests_done_at = Some(now);
            }
        }
        self.take_if_drained(target, port, now)
    }

    /// The run on `port` exited: nothing more can be forwarded to it.
    pub fn exited(&mut self, target: usize, port: u16) {
        let t = &mut self.targets[target];
        if t.current == Some(port) {
            t.current = None;
        }
        t.runs.retain(|r| r.port != port);
    }

    /// Retired runs whose grace period or limit has passed.
    pub fn tick(&mut self, now: Instant) -> Vec<Drained> {
        let mut due = Vec::new();
        for (index, t) in self.targets.iter().enumerate() {
            for run in &t.runs {
                if self.drained_at(run).is_some_and(|at| at <= now) {
                    due.push((index, run.port));
                }
            }
        }
        due.into_iter()
            .filter_map(|(target, port)| self.take_if_drained(target, port, now))
            .collect()
    }

    /// When the next retired run falls due, for the timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.targets
            .iter()
            .flat_map(|t| &t.runs)
            .filter_map(|run| self.drained_at(run))
            .min()
    }

    /// When a retired run counts as drained at the latest, given what it holds now.
    fn drained_at(&self, run: &Run) -> Option<Instant> {
        let retired = run.retired_at?;
        let limit = retired + self.limits.retire_limit;
        Some(match run.requests_done_at {
            Some(done) if run.streams == 0 => done,
            Some(done) => (done + self.limits.stream_grace).min(limit),
            None => limit,
        })
    }

    fn take_if_drained(&mut self, target: usize, port: u16, now: Instant) -> Option<Drained> {
        let t = &self.targets[target];
        let run = t.runs.iter().find(|r| r.port == port)?;
        let due = run.retired_at.is_some()
            && ((run.requests == 0 && run.streams == 0)
                || self.drained_at(run).is_some_and(|at| at <= now));
        if !due {
            return None;
        }
        let t = &mut self.targets[target];
        t.runs.retain(|r| r.port != port);
        Some(Drained {
            target: t.name.clone(),
            port,
        })
    }

    fn run_mut(&mut self, target: usize, port: u16) -> Option<&mut Run> {
        self.targets[target]
            .runs
            .iter_mut()
            .find(|r| r.port == port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GRACE: Duration = Duration::from_secs(5);
    const LIMIT: Duration = Duration::from_secs(60);

    fn routes() -> Routes {
        Routes::new(
            ["web".to_string()],
            Limits {
                stream_grace: GRACE,
                retire_limit: LIMIT,
            },
        )
    }

    fn drained(port: u16) -> Option<Drained> {
        Some(Drained {
            target: "web".into(),
            port,
        })
    }

    #[test]
    fn requests_wait_until_a_run_is_ready_then_go_to_the_newest() {
        let mut r = routes();
        assert_eq!(r.pick(0), Pick::Wait);
        r.starting(0, 4001);
        assert_eq!(r.pick(0), Pick::Wait, "started is not ready");
        r.route(0, 4001);
        assert_eq!(r.pick(0), Pick::Forward(4001));
        r.starting(0, 4002);
        assert_eq!(
            r.pick(0),
            Pick::Forward(4001),
            "old serves while new starts"
        );
        r.route(0, 4002);
        assert_eq!(r.pick(0), Pick::Forward(4002));
    }

    #[test]
    fn a_failed_build_answers_only_when_no_run_exists() {
        let mut r = routes();
        r.build_failed("error[E0308]".into());
        assert_eq!(r.pick(0), Pick::Failed("error[E0308]".into()));
        r.building();
        assert_eq!(r.pick(0), Pick::Wait, "a new build may fix it");
        r.route(0, 4001);
        r.build_failed("error[E0308]".into());
        assert_eq!(r.pick(0), Pick::Forward(4001), "the old run keeps serving");
        let now = Instant::now();
        r.finished(0, 4001, Use::Request, now);
        r.exited(0, 4001);
        assert_eq!(r.pick(0), Pick::Failed("error[E0308]".into()));
    }

    #[test]
    fn a_crashed_run_makes_requests_wait() {
        let mut r = routes();
        r.route(0, 4001);
        r.exited(0, 4001);
        assert_eq!(r.pick(0), Pick::Wait);
    }

    #[test]
    fn an_idle_run_is_drained_at_once() {
        let mut r = routes();
        r.route(0, 4001);
        r.route(0, 4002);
        assert_eq!(r.retire(0, 4001, Instant::now()), drained(4001));
        assert_eq!(r.next_deadline(), None);
    }

    #[test]
    fn a_retired_run_finishes_its_requests_first() {
        let mut r = routes();
        let now = Instant::now();
        r.route(0, 4001);
        assert_eq!(r.pick(0), Pick::Forward(4001));
        assert_eq!(r.pick(0), Pick::Forward(4001));
        r.route(0, 4002);
        assert_eq!(r.retire(0, 4001, now), None);
        assert_eq!(
            r.pick(0),
            Pick::Forward(4002),
            "no new requests to a retired run"
        );
        assert_eq!(r.finished(0, 4001, Use::Request, now), None);
        assert_eq!(r.finished(0, 4001, Use::Request, now), drained(4001));
    }

    #[test]
    fn streams_are_kept_for_the_grace_period_after_the_requests() {
        let mut r = routes();
        let t0 = Instant::now();
        r.route(0, 4001);
        r.pick(0);
        assert_eq!(r.became_stream(0, 4001, t0), None);
        r.pick(0);
        r.route(0, 4002);
        assert_eq!(r.retire(0, 4001, t0), None);
        assert_eq!(
            r.next_deadline(),
            Some(t0 + LIMIT),
            "a request is in flight"
        );
        let t1 = t0 + Duration::from_secs(2);
        assert_eq!(
            r.finished(0, 4001, Use::Request, t1),
            None,
            "a stream is open"
        );
        assert_eq!(r.next_deadline(), Some(t1 + GRACE));
        assert_eq!(r.tick(t1 + GRACE - Duration::from_millis(1)), vec![]);
        assert_eq!(r.tick(t1 + GRACE), vec![drained(4001).unwrap()]);
        assert_eq!(
            r.finished(0, 4001, Use::Stream, t1 + GRACE),
            None,
            "already reported"
        );
    }

    #[test]
    fn a_stream_that_closes_early_ends_the_wait() {
        let mut r = routes();
        let t0 = Instant::now();
        r.route(0, 4001);
        r.pick(0);
        r.became_stream(0, 4001, t0);
        r.route(0, 4002);
        assert_eq!(r.retire(0, 4001, t0), None);
        assert_eq!(r.finished(0, 4001, Use::Stream, t0), drained(4001));
    }

    #[test]
    fn a_hung_request_is_given_up_after_the_limit() {
        let mut r = routes();
        let t0 = Instant::now();
        r.route(0, 4001);
        r.pick(0);
        r.route(0, 4002);
        r.retire(0, 4001, t0);
        assert_eq!(r.tick(t0 + LIMIT), vec![drained(4001).unwrap()]);
    }

    #[test]
    fn retiring_an_unknown_run_reports_it_drained() {
        let mut r = routes();
        assert_eq!(r.retire(0, 4009, Instant::now()), drained(4009));
    }
}
