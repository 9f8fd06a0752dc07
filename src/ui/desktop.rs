//! Showing one desktop notification: the freedesktop notification service over D-Bus
//! (`notify-rust`) where there is one to talk to; elsewhere an error that says so, which `-N`
//! reports once before going on without notifications.

/// Shows a notification; blocks until the service answered (call it off the engine's loop).
#[cfg(all(unix, not(target_os = "macos")))]
pub fn show(summary: &str, body: &str) -> Result<(), String> {
    notify_rust::Notification::new()
        .appname("cargo hot")
        .summary(summary)
        .body(body)
        .show()
        .map(|_| ())
        .map_err(|e| e.to_string())
}

#[cfg(not(all(unix, not(target_os = "macos"))))]
pub fn show(_summary: &str, _body: &str) -> Result<(), String> {
    Err(
        "cargo hot sends desktop notifications only through D-Bus, which this platform lacks"
            .into(),
    )
}
