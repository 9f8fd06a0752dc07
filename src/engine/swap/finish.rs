//! A build's end of the swap: cargo's output read as it comes, what its exit means, and,
//! for a good build, which targets get their new executable (fresh and identical ones do not).

use super::*;

impl Swap {
    pub(super) fn on_build_output(&mut self, cx: &mut Ctx, stream: Stream, line: Vec<u8>) {
        let Some(active) = &mut self.build else {
            return;
        };
        match stream {
            Stream::Stdout => match active.build.on_stdout_line(&line) {
                Some(Progress::Unit { name, fresh }) => cx.emit(Event::BuildProgress {
                    unit: name,
                    fresh,
                    done: active.build.units_done,
                }),
                Some(Progress::BuildScript { package }) => cx.emit(Event::BuildProgress {
                    unit: format!("{package} (build script)"),
                    fresh: false,
                    done: active.build.units_done,
                }),
                None => {}
            },
            Stream::Stderr => {
                cx.push(Action::ShowCargoOutput(line.clone()));
                active.stderr.push(line);
            }
        }
    }

    pub(super) fn on_build_exit(
        &mut self,
        cx: &mut Ctx,
        exited_ok: bool,
        cancelled: bool,
        ended: Instant,
        now: Instant,
    ) {
        let Some(active) = self.build.take() else {
            return;
        };
        let cancelled = cancelled || !self.queued.is_empty();
        let outcome = active.build.finish(exited_ok, ended);
        // What the build taught is kept whatever its result: it sharpens `affected`.
        let good = outcome.ok && !cancelled && !cx.quitting();
        let request = StageRequest {
            executables: if good {
                outcome
                    .artifacts
                    .iter()
                    .filter_map(|(t, a)| {
                        let job = self.jobs.iter().find(|j| &j.target == t)?;
                        Some(StageTarget {
                            target: t.clone(),
                            artifact: a.clone(),
                            running: job.newest_staged().cloned(),
                        })
                    })
                    .collect()
            } else {
                Vec::new()
            },
            dep_info: outcome
                .artifacts
                .iter()
                .map(|(t, a)| (t.clone(), a.dep_info()))
                .collect(),
            build_scripts: outcome
                .build_scripts
                .iter()
                .filter_map(|(id, out_dir)| {
                    let package = cx.workspace.packages().iter().find(|p| &p.id == id)?;
                    Some((id.clone(), package.dir.clone(), out_dir.clone()))
                })
                .collect(),
        };
        cx.push(Action::Stage(Box::new(request)));
        if cx.quitting() {
            return;
        }
        if cancelled {
            let next = std::mem::take(&mut self.queued);
            self.build_after_hooks(cx, next.into_iter().collect(), now);
            return;
        }
        let restart_all = std::mem::take(&mut self.restart_all);
        if !outcome.ok {
            let rendered: Vec<String> = active
                .stderr
                .iter()
                .map(|line| String::from_utf8_lossy(line).into_owned())
                .collect();
            self.tell_proxy(cx, ProxyCall::BuildFailed(rendered.join("\n")));
            cx.push(Action::ShowCargoFailure(active.stderr));
            cx.emit(Event::BuildFinished {
                ok: false,
                duration_ms: outcome.duration.as_millis(),
                targets: outcome.targets.iter().map(ToString::to_string).collect(),
                rebuilt: Vec::new(),
                fresh: Vec::new(),
            });
            if !self.queued.is_empty() {
                let next = std::mem::take(&mut self.queued);
                self.request_build(cx, next, now);
            }
            return;
        }
        self.finishing = Some(Finishing {
            outcome,
            restart_all,
        });
    }

    /// The executables of a good build are staged: decide who restarts.
    pub(super) fn on_staged(&mut self, cx: &mut Ctx, result: StageResult, now: Instant) {
        self.knowledge.merge(result.knowledge);
        for warning in result.warnings {
            cx.warn_verbose(warning);
        }
        // Cargo reruns a build script when a path it printed changes, even in `.git`: the
        // watcher must see each such path, walked or not.
        let watches = cx.workspace.script_watches(&self.knowledge);
        if watches != self.script_watches {
            self.script_watches = watches.clone();
            cx.push(Action::WatchExact(watches));
        }
        if self.finishing.is_none() {
            return;
        }
        self.tell_proxy(cx, ProxyCall::BuildOk);
        let Some(finishing) = &self.finishing else {
            return;
        };
        let restart_all = finishing.restart_all;
        let mut swaps = Vec::new();
        let (mut rebuilt, mut fresh) = (Vec::new(), Vec::new());
        for (target, staging) in result.staged {
            let staging = match staging {
                Ok(staging) => staging,
                Err(error) => {
                    cx.emit(Event::Error {
                        message: format!("{error}; {target} keeps running"),
                    });
                    continue;
                }
            };
            let Some(job) = self.jobs.iter().find(|j| j.target == target) else {
                continue;
            };
            match staging {
                Staging::SameAsRunning => {
                    fresh.push(target.to_string());
                    // `r` restarts it anyway: the user asked for a fresh process.
                    if let Some(staged) = job.newest_staged().filter(|_| restart_all) {
                        if job.is_alive() {
                            swaps.push(PlannedSwap {
                                target,
                                staged: staged.clone(),
                                reason: "restart requested (r)",
                            });
                        }
                    }
                }
                Staging::New(staged) => {
                    rebuilt.push(target.to_string());
                    swaps.push(PlannedSwap {
                        target,
                        staged,
                        reason: "new build",
                    });
                }
            }
        }
        let outcome = &finishing.outcome;
        let then = Then::Announce {
            swaps,
            rebuilt,
            fresh,
            outcome_targets: outcome.targets.clone(),
            duration_ms: outcome.duration.as_millis(),
        };
        let step = self.step(
            Stage::AfterBuild,
            None,
            None,
            None,
            "no target is restarted: the running ones keep running",
        );
        self.gate(cx, vec![step], then, now);
    }
}
