//! Hooks as gates: the steps (one hook each) that must pass before a build starts, a build is
//! announced, or a process is swapped or restarted. Each step belongs to a unit (one target,
//! or the whole gate); a failing hook fails its unit and skips the unit's other steps. Hooks
//! run one at a time, in order, off the loop ([`Action::RunHook`] → [`Input::HookDone`]).

use std::collections::{BTreeSet, VecDeque};
use std::time::Instant;

use super::{Effects, PlannedSwap, Swap};
use crate::engine::core::Ctx;
use crate::engine::protocol::{Action, HookRun};
use crate::event::Event;
use crate::hooks::Stage;
use crate::workspace::TargetId;

/// Hooks to pass before something happens. Each step belongs to a unit (`None`: the whole
/// gate); a failed step fails its unit and skips the unit's remaining steps.
pub(super) struct Gate {
    pub(super) steps: VecDeque<Step>,
    failed_whole: bool,
    failed: BTreeSet<TargetId>,
    pub(super) then: Then,
}

pub(super) struct Step {
    stage: Stage,
    /// Whose hook: a target's own, or the workspace-wide one.
    owner: Option<TargetId>,
    /// `HOT_TARGET`.
    target: Option<TargetId>,
    unit: Option<TargetId>,
    /// Said after the hook's error: what failing it means.
    consequence: String,
}

/// What a gate leads to once its hooks have run.
pub(super) enum Then {
    Build(Vec<TargetId>),
    /// The global `after-build` hook of a good build ran.
    Announce {
        swaps: Vec<PlannedSwap>,
        rebuilt: Vec<String>,
        fresh: Vec<String>,
        outcome_targets: Vec<TargetId>,
        duration_ms: u128,
    },
    Swap {
        swaps: Vec<PlannedSwap>,
        revive: Vec<TargetId>,
    },
    Restart {
        targets: Vec<TargetId>,
        reason: String,
    },
}

impl Swap {
    /// A step for `stage`'s hook of `owner` (a target's own, `None`: the workspace's), or
    /// nothing when no such hook is configured.
    pub(super) fn step(
        &self,
        stage: Stage,
        owner: Option<&TargetId>,
        target: Option<&TargetId>,
        unit: Option<&TargetId>,
        consequence: &str,
    ) -> Option<Step> {
        let configured = match owner {
            None => self.config.hot.hooks.get(stage),
            Some(owner) => self
                .config
                .hot
                .targets
                .get(owner)
                .and_then(|c| c.hooks.get(stage)),
        };
        configured.map(|_| Step {
            stage,
            owner: owner.cloned(),
            target: target.or(owner).cloned(),
            unit: unit.cloned(),
            consequence: consequence.to_string(),
        })
    }

    /// The workspace-wide and `target`'s own `before-start` hooks, as `target`'s unit.
    pub(super) fn start_steps(&self, target: &TargetId, consequence: &str) -> Vec<Option<Step>> {
        vec![
            self.step(
                Stage::BeforeStart,
                None,
                Some(target),
                Some(target),
                consequence,
            ),
            self.step(
                Stage::BeforeStart,
                Some(target),
                Some(target),
                Some(target),
                consequence,
            ),
        ]
    }

    /// Queues a gate; with no hook to run it passes at once.
    pub(super) fn gate(
        &mut self,
        cx: &mut Ctx,
        steps: Vec<Option<Step>>,
        then: Then,
        now: Instant,
    ) {
        self.gates.push_back(Gate {
            steps: steps.into_iter().flatten().collect(),
            failed_whole: false,
            failed: BTreeSet::new(),
            then,
        });
        self.advance_gates(cx, now);
    }

    /// Runs the next hook of the first gate, or, when a gate has none left, what it leads to.
    fn advance_gates(&mut self, cx: &mut Ctx, now: Instant) {
        while self.running_hook.is_none() {
            let Some(gate) = self.gates.front_mut() else {
                return;
            };
            // Skip steps of units that already failed.
            while let Some(step) = gate.steps.front() {
                let dead = gate.failed_whole
                    || step.unit.as_ref().is_some_and(|u| gate.failed.contains(u));
                if !dead {
                    break;
                }
                gate.steps.pop_front();
            }
            if let Some(step) = gate.steps.front() {
                let hook = match &step.owner {
                    None => self.config.hot.hooks.get(step.stage),
                    Some(owner) => self
                        .config
                        .hot
                        .targets
                        .get(owner)
                        .and_then(|c| c.hooks.get(step.stage)),
                };
                let Some(hook) = hook.cloned() else {
                    gate.steps.pop_front();
                    continue;
                };
                let id = cx.next_hook_id();
                self.running_hook = Some(id);
                cx.push(Action::RunHook(Box::new(HookRun {
                    id,
                    hook,
                    stage: step.stage,
                    root: cx.workspace.root().to_path_buf(),
                    changed: self.changed.iter().cloned().collect(),
                    target: step.target.clone(),
                    timeout: self.config.hot.hook_timeout(),
                })));
                return;
            }
            let gate = self.gates.pop_front().expect("checked");
            self.pass(cx, gate, now);
        }
    }

    pub(super) fn on_hook_done(
        &mut self,
        cx: &mut Ctx,
        id: u64,
        result: Result<(), String>,
        now: Instant,
    ) {
        if self.running_hook != Some(id) {
            return;
        }
        self.running_hook = None;
        // Quitting dropped the gates: the hook was killed, nothing waits for its verdict.
        let Some(gate) = self.gates.front_mut() else {
            return;
        };
        let Some(step) = gate.steps.pop_front() else {
            return;
        };
        if let Err(error) = result {
            cx.emit(Event::Error {
                message: format!("{error}; {}", step.consequence),
            });
            match step.unit {
                None => gate.failed_whole = true,
                Some(unit) => {
                    gate.failed.insert(unit);
                }
            }
        }
        self.advance_gates(cx, now);
    }

    /// A change arrived while a `before-build` hook runs for the build it guards: that hook
    /// and its gate go (the hook is killed), and `wanted` joins the targets the gate was for,
    /// which are built after the hooks have run again for the union. False if no such hook
    /// runs.
    pub(super) fn cancel_before_build(
        &mut self,
        cx: &mut Ctx,
        wanted: &mut BTreeSet<TargetId>,
    ) -> bool {
        let Some(id) = self.running_hook else {
            return false;
        };
        let running_before_build = self.gates.front().is_some_and(|g| {
            matches!(g.then, Then::Build(_))
                && g.steps
                    .front()
                    .is_some_and(|s| s.stage == Stage::BeforeBuild)
        });
        if !running_before_build {
            return false;
        }
        let gate = self.gates.pop_front().expect("checked");
        if let Then::Build(targets) = gate.then {
            wanted.extend(targets);
        }
        self.running_hook = None;
        cx.push(Action::KillHook { id });
        true
    }

    /// Quitting: the hook running now is killed (quitting waits for its end).
    pub(super) fn kill_running_hook(&mut self, cx: &mut Ctx) {
        if let Some(id) = self.running_hook {
            cx.push(Action::KillHook { id });
        }
    }

    /// A gate's hooks have all run.
    fn pass(&mut self, cx: &mut Ctx, gate: Gate, now: Instant) {
        if cx.quitting() {
            return;
        }
        let failed = |t: &TargetId| gate.failed_whole || gate.failed.contains(t);
        match gate.then {
            Then::Build(targets) => {
                if gate.failed_whole {
                    // Not lost: the next change's build covers these too.
                    self.retry.extend(targets);
                } else {
                    self.start_build(cx, targets, now);
                }
            }
            Then::Announce {
                mut swaps,
                rebuilt,
                fresh,
                outcome_targets,
                duration_ms,
            } => {
                if gate.failed_whole {
                    swaps.clear();
                }
                cx.emit(Event::BuildFinished {
                    ok: true,
                    duration_ms,
                    targets: outcome_targets.iter().map(ToString::to_string).collect(),
                    rebuilt,
                    fresh,
                });
                // A target that exited on its own comes back after a change that affected
                // it, even if cargo found it fresh (the user asked for another try).
                let revive: Vec<TargetId> = outcome_targets
                    .iter()
                    .filter(|t| !swaps.iter().any(|s| &s.target == *t))
                    .filter(|t| {
                        self.jobs
                            .iter()
                            .any(|j| &j.target == *t && !j.is_alive() && j.latest.is_some())
                    })
                    .cloned()
                    .collect();
                let mut steps = Vec::new();
                let not_restarted =
                    |t: &TargetId| format!("{t} is not restarted; what runs keeps running");
                for swap in &swaps {
                    let keeps = format!("{} keeps running", swap.target);
                    let target = Some(&swap.target);
                    steps.push(self.step(Stage::AfterBuild, target, target, target, &keeps));
                    steps.extend(self.start_steps(&swap.target, &not_restarted(&swap.target)));
                }
                for target in &revive {
                    steps.extend(self.start_steps(target, &not_restarted(target)));
                }
                self.gate(cx, steps, Then::Swap { swaps, revive }, now);
            }
            Then::Swap { swaps, revive } => {
                let held: Vec<TargetId> = self
                    .targets
                    .iter()
                    .filter(|t| self.is_held(t))
                    .cloned()
                    .collect();
                let mut fx = Effects::new(cx, &self.settings);
                for swap in swaps.into_iter().filter(|s| !failed(&s.target)) {
                    if let Some(job) = self.jobs.iter_mut().find(|j| j.target == swap.target) {
                        if held.contains(&job.target) {
                            // Stopped with `s`: the new build is what `s` starts.
                            job.latest = Some(swap.staged);
                        } else {
                            job.replace(swap.staged, swap.reason, &mut fx, now);
                        }
                    }
                }
                for target in revive.iter().filter(|t| !failed(t) && !held.contains(t)) {
                    if let Some(job) = self.jobs.iter_mut().find(|j| &j.target == target) {
                        if let (false, Some(latest)) = (job.is_alive(), job.latest.clone()) {
                            job.replace(latest, "restart after exit", &mut fx, now);
                        }
                    }
                }
                fx.flush();
                self.changed.clear();
                self.finishing = None;
                self.remove_stale_copies(cx);
                if !self.queued.is_empty() {
                    let next = std::mem::take(&mut self.queued);
                    self.request_build(cx, next, now);
                }
            }
            Then::Restart { targets, reason } => {
                let held: Vec<TargetId> = self
                    .targets
                    .iter()
                    .filter(|t| self.is_held(t))
                    .cloned()
                    .collect();
                let mut fx = Effects::new(cx, &self.settings);
                for job in &mut self.jobs {
                    let wanted = targets.contains(&job.target) && !held.contains(&job.target);
                    if wanted && !failed(&job.target) {
                        if let Some(latest) = job.latest.clone() {
                            job.replace(latest, &reason, &mut fx, now);
                        }
                    }
                }
                fx.flush();
            }
        }
    }
}
