//! What `--clear`, `--bell` and `--notify` do: a pure rule from events to alerts, and the
//! desktop notifier that shows them.
//!
//! [`Alerts::on_event`] decides (unit-tested, no I/O): clear the screen before each build,
//! ring the bell when a build fails, notify when a build fails and when the next good build
//! recovers from it. [`Notifier`] sends notifications through the desktop's notification
//! service ([`super::desktop`]) on its own thread, so a slow or missing service
//! never holds up a restart; without a service it says so once and is then quiet.

use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};

use crate::event::Event;

/// What the user asked for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AlertOptions {
    pub clear: bool,
    pub bell: bool,
    pub notify: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alert {
    ClearScreen,
    Bell,
    Notify { summary: String, body: String },
}

/// Remembers whether the last build failed, to tell a recovery from any good build.
#[derive(Debug, Default)]
pub struct Alerts {
    options: AlertOptions,
    failing: bool,
}

impl Alerts {
    pub fn new(options: AlertOptions) -> Alerts {
        Alerts {
            options,
            failing: false,
        }
    }

    /// The alerts `event` calls for, to perform before it is shown. A round of
    /// `test|check|clippy` counts as a build.
    pub fn on_event(&mut self, event: &Event) -> Vec<Alert> {
        let mut alerts = Vec::new();
        let (ok, failed, fixed) = match event {
            Event::BuildStarted { .. } | Event::RoundStarted { .. } => {
                if self.options.clear {
                    alerts.push(Alert::ClearScreen);
                }
                return alerts;
            }
            Event::BuildFinished { ok, targets, .. } => {
                let targets = targets.join(", ");
                (
                    *ok,
                    format!("{targets}: the running processes keep running"),
                    format!("{targets} built again"),
                )
            }
            Event::RoundFinished { ok, summary, .. } => (*ok, summary.clone(), summary.clone()),
            _ => return alerts,
        };
        if !ok && self.options.bell {
            alerts.push(Alert::Bell);
        }
        // One notification when it breaks and one when it is fixed, not one per save.
        if self.options.notify && self.failing == ok {
            alerts.push(Alert::Notify {
                summary: if ok {
                    "cargo hot: build fixed".into()
                } else {
                    "cargo hot: build failed".into()
                },
                body: if ok { fixed } else { failed },
            });
        }
        self.failing = !ok;
        alerts
    }
}

/// How long a notification may take before the engine stops waiting for its answer (it is
/// still shown; a failure is then reported with the next event).
const ANSWER_WAIT: Duration = Duration::from_millis(300);

/// The desktop-notification thread.
pub struct Notifier {
    tx: Sender<(String, String)>,
    failures: Receiver<String>,
    /// Set once the service failed: no more tries, no more warnings.
    gave_up: bool,
}

impl Notifier {
    pub fn start() -> Notifier {
        let (tx, rx) = crossbeam_channel::unbounded::<(String, String)>();
        let (fail_tx, failures) = crossbeam_channel::unbounded();
        let spawned = std::thread::Builder::new()
            .name("notifications".into())
            .spawn(move || {
                for (summary, body) in rx {
                    if let Err(error) = super::desktop::show(&summary, &body) {
                        let _ = fail_tx.send(error);
                        return;
                    }
                }
            });
        // Without the thread, sending fails and the first notification reports it.
        drop(spawned);
        Notifier {
            tx,
            failures,
            gave_up: false,
        }
    }

    /// Sends a notification; returns the warning to show if the service is not there (once).
    pub fn send(&mut self, summary: String, body: String) -> Option<String> {
        if self.gave_up {
            return None;
        }
        if self.tx.send((summary, body)).is_err() {
            return self.give_up("the notification thread is not running");
        }
        match self.failures.recv_timeout(ANSWER_WAIT) {
            Ok(error) => self.give_up(&error),
            Err(_) => None,
        }
    }

    /// A failure reported after [`Notifier::send`] stopped waiting for it.
    pub fn late_failure(&mut self) -> Option<String> {
        if self.gave_up {
            return None;
        }
        let error = self.failures.try_recv().ok()?;
        self.give_up(&error)
    }

    fn give_up(&mut self, error: &str) -> Option<String> {
        self.gave_up = true;
        Some(format!(
            "desktop notifications (--notify) are not available ({error}); going on without them"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finished(ok: bool) -> Event {
        Event::BuildFinished {
            ok,
            duration_ms: 10,
            targets: vec!["api".into()],
            rebuilt: Vec::new(),
            fresh: Vec::new(),
        }
    }

    fn started() -> Event {
        Event::BuildStarted {
            targets: vec!["api".into()],
            command: "cargo build".into(),
        }
    }

    #[test]
    fn nothing_unless_asked() {
        let mut alerts = Alerts::new(AlertOptions::default());
        for event in [started(), finished(false), finished(true)] {
            assert!(alerts.on_event(&event).is_empty());
        }
    }

    #[test]
    fn clear_before_each_build_and_bell_on_each_failure() {
        let mut alerts = Alerts::new(AlertOptions {
            clear: true,
            bell: true,
            notify: false,
        });
        assert_eq!(alerts.on_event(&started()), [Alert::ClearScreen]);
        assert_eq!(alerts.on_event(&finished(false)), [Alert::Bell]);
        assert_eq!(alerts.on_event(&started()), [Alert::ClearScreen]);
        assert_eq!(alerts.on_event(&finished(false)), [Alert::Bell]);
        assert!(alerts.on_event(&finished(true)).is_empty());
    }

    #[test]
    fn notify_on_failure_and_on_recovery_only() {
        let mut alerts = Alerts::new(AlertOptions {
            notify: true,
            ..AlertOptions::default()
        });
        // A good build that fixes nothing says nothing.
        assert!(alerts.on_event(&finished(true)).is_empty());
        let failed = alerts.on_event(&finished(false));
        assert!(
            matches!(&failed[..], [Alert::Notify { summary, body }]
                if summary.contains("failed") && body.contains("api")),
            "{failed:?}"
        );
        // Still failing: one notification per breakage, not per save.
        assert!(alerts.on_event(&finished(false)).is_empty());
        let fixed = alerts.on_event(&finished(true));
        assert!(
            matches!(&fixed[..], [Alert::Notify { summary, .. }] if summary.contains("fixed")),
            "{fixed:?}"
        );
        assert!(alerts.on_event(&finished(true)).is_empty());
    }

    #[test]
    fn rounds_of_test_check_clippy_count_as_builds() {
        let mut alerts = Alerts::new(AlertOptions {
            clear: true,
            bell: true,
            notify: true,
        });
        let started = Event::RoundStarted {
            tool: "test".into(),
            packages: vec!["api".into()],
            commands: Vec::new(),
        };
        assert_eq!(alerts.on_event(&started), [Alert::ClearScreen]);
        let round = |ok| Event::RoundFinished {
            tool: "test".into(),
            ok,
            duration_ms: 5,
            packages: Vec::new(),
            passed: 1,
            failed: u32::from(!ok) as usize,
            failures: Vec::new(),
            errors: 0,
            warnings: 0,
            summary: "tested api".into(),
        };
        let failed = alerts.on_event(&round(false));
        assert_eq!(failed[0], Alert::Bell);
        assert!(matches!(&failed[1], Alert::Notify { body, .. } if body == "tested api"));
        assert!(matches!(
            &alerts.on_event(&round(true))[..],
            [Alert::Notify { .. }]
        ));
    }
}
