//! Zero-downtime restarts: the socket lives in cargo hot, old and new overlap, and a new build
//! that does not come up never takes the old one down.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::harness::*;

/// The port of the first `--listen` socket, from the `listening` event.
fn listening_port(hot: &mut Hot) -> u16 {
    let event = hot.wait_event("listening", EVENT_TIMEOUT, |_| true);
    let address = event["sockets"][0]["address"].as_str().unwrap();
    address.rsplit(':').next().unwrap().parse().unwrap()
}

/// The next `ready` event of `target`; its pid.
fn ready(hot: &mut Hot, target: &str) -> u32 {
    let event = hot.wait_event("ready", BUILD_TIMEOUT, |e| e["target"] == target);
    event["pid"].as_u64().unwrap() as u32
}

/// The `ready` events of `targets`, in whatever order they come; their pids.
fn ready_all<const N: usize>(hot: &mut Hot, targets: [&str; N]) -> [u32; N] {
    let mut pids = [0; N];
    while pids.contains(&0) {
        let event = hot.wait_for("ready", BUILD_TIMEOUT, |e| {
            e["event"] == "ready" && targets.iter().any(|t| e["target"] == *t)
        });
        let i = targets.iter().position(|t| event["target"] == *t).unwrap();
        pids[i] = event["pid"].as_u64().unwrap() as u32;
    }
    pids
}

/// What a request ended as.
#[derive(Debug)]
#[expect(
    dead_code,
    reason = "the texts are read through Debug, in assertion messages"
)]
enum Outcome {
    Answer(String),
    /// No connection, or nothing came back.
    Failed(String),
    /// A response started and was cut short.
    Cut(String),
}

/// One GET on a new connection, telling a refused or reset connection from a cut response.
fn request(port: u16, path: &str) -> Outcome {
    let mut stream = match TcpStream::connect(("127.0.0.1", port)) {
        Ok(stream) => stream,
        Err(e) => return Outcome::Failed(format!("connect: {e}")),
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(20)));
    let request = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
    if let Err(e) = stream.write_all(request.as_bytes()) {
        return Outcome::Failed(format!("write: {e}"));
    }
    let mut response = Vec::new();
    let read = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let Some((head, body)) = text.split_once("\r\n\r\n") else {
        return match (read, text.is_empty()) {
            (_, true) => Outcome::Failed("no response".into()),
            (Err(e), false) => Outcome::Cut(format!("{e}: {text:?}")),
            (Ok(_), false) => Outcome::Cut(text),
        };
    };
    let length: Option<usize> = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|n| n.trim().parse().ok());
    if read.is_err() || length != Some(body.len()) {
        return Outcome::Cut(text);
    }
    Outcome::Answer(body.to_string())
}

/// A client sending requests one after another, each on a new connection, until stopped.
struct Client {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Vec<Outcome>>,
}

impl Client {
    fn start(port: u16, path: &'static str) -> Client {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut outcomes = Vec::new();
            // Bounded in count and time whatever happens to the test.
            let give_up = Instant::now() + Duration::from_secs(600);
            while !flag.load(Ordering::Relaxed)
                && outcomes.len() < 200_000
                && Instant::now() < give_up
            {
                outcomes.push(request(port, path));
            }
            outcomes
        });
        Client { stop, thread }
    }

    fn finish(self) -> Vec<Outcome> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

fn problems(outcomes: &[Outcome]) -> Vec<&Outcome> {
    outcomes
        .iter()
        .filter(|o| !matches!(o, Outcome::Answer(_)))
        .collect()
}

fn answers(outcomes: &[Outcome]) -> Vec<&str> {
    outcomes
        .iter()
        .filter_map(|o| match o {
            Outcome::Answer(body) => Some(body.as_str()),
            _ => None,
        })
        .collect()
}

#[test]
fn overlapping_restarts_under_load_fail_no_request() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["-p", "api", "--listen", "127.0.0.1:0"]);
    let port = listening_port(&mut hot);
    let mut serving = ready(&mut hot, "api");
    let fast = Client::start(port, "/");
    let slow = Client::start(port, "/slow");

    for version in ["v2", "v3", "v4"] {
        let previous = ws.read("core/src/lib.rs");
        let from = previous.split('"').nth(1).unwrap().to_string();
        ws.replace(
            "core/src/lib.rs",
            &format!("\"{from}\""),
            &format!("\"{version}\""),
        );
        let new = ready(&mut hot, "api");
        assert_ne!(new, serving);
        // The old one is asked to stop only after the new one is ready.
        let stopping = hot.wait_event("stopping", EVENT_TIMEOUT, |e| e["pid"] == serving);
        assert_eq!(stopping["reason"], "new build ready");
        let exited = hot.wait_event("exited", EVENT_TIMEOUT, |e| e["pid"] == serving);
        assert_eq!(
            exited["code"], 0,
            "the old one drained and exited by itself"
        );
        serving = new;
    }
    // Requests until the newest build answers, so every restart happened under load.
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while http_get(port, "/").as_deref() != Some("api v4\n") {
        assert!(Instant::now() < deadline, "v4 never answered");
    }
    let (fast, slow) = (fast.finish(), slow.finish());
    assert!(problems(&fast).is_empty(), "{:?}", problems(&fast));
    assert!(problems(&slow).is_empty(), "{:?}", problems(&slow));
    let fast = answers(&fast);
    assert!(fast.contains(&"api v1\n") && fast.contains(&"api v4\n"));
    assert!(!answers(&slow).is_empty());
}

/// A target handed sockets that sends `READY=1` (the fixture's api does, once it has taken the
/// socket) is ready then, not after the whole 500 ms grace: the old process stops sharing the
/// socket with it at once. Without `READY=1` the grace still decides (the delay tests).
#[test]
fn a_socket_target_that_sends_ready_takes_over_before_the_grace_ends() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["-p", "api", "--listen", "127.0.0.1:0"]);
    listening_port(&mut hot);
    let first = hot.wait_event("ready", BUILD_TIMEOUT, |e| e["target"] == "api");
    ws.replace("core/src/lib.rs", "\"v1\"", "\"v2\"");
    let second = hot.wait_event("ready", BUILD_TIMEOUT, |e| {
        e["target"] == "api" && e["pid"] != first["pid"]
    });
    for ready in [first, second] {
        // The api starts in milliseconds; only the grace would make this 500.
        let after = ready["after_ms"].as_u64().unwrap();
        assert!(after < 500, "ready after {after} ms: {ready}");
    }
}

#[test]
fn no_overlap_with_listen_stops_first_and_the_backlog_holds_clients() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["-p", "api", "--listen", "127.0.0.1:0", "--no-overlap"]);
    let port = listening_port(&mut hot);
    let old = ready(&mut hot, "api");
    let client = Client::start(port, "/");

    ws.replace("core/src/lib.rs", "\"v1\"", "\"v2\"");
    let mark = hot.mark();
    let new = ready(&mut hot, "api");
    let order: Vec<String> = hot
        .since(mark)
        .iter()
        .filter(|e| e["pid"] == old || e["pid"] == new)
        .map(|e| format!("{} {}", e["event"].as_str().unwrap(), e["pid"]))
        .collect();
    assert_eq!(
        order,
        [
            format!("stopping {old}"),
            format!("exited {old}"),
            format!("started {new}"),
            format!("ready {new}")
        ]
    );
    let deadline = Instant::now() + EVENT_TIMEOUT;
    while http_get(port, "/").as_deref() != Some("api v2\n") {
        assert!(Instant::now() < deadline, "v2 never answered");
    }
    let outcomes = client.finish();
    assert!(problems(&outcomes).is_empty(), "{:?}", problems(&outcomes));
}

#[test]
fn a_new_build_that_crashes_at_start_leaves_the_old_one_serving() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&["-p", "api", "--listen", "127.0.0.1:0"]);
    let port = listening_port(&mut hot);
    let old = ready(&mut hot, "api");

    ws.replace(
        "api/src/main.rs",
        "fn main() {",
        "fn main() {\n    eprintln!(\"refusing to start\");\n    std::process::exit(3);",
    );
    let new = hot.started("api");
    let failed = hot.wait_event("start-failed", BUILD_TIMEOUT, |_| true);
    assert_eq!(failed["pid"], new);
    assert_eq!(failed["still_serving"], old);
    assert!(
        failed["reason"].as_str().unwrap().contains("exit status 3"),
        "{failed}"
    );
    assert_eq!(http_get(port, "/pid"), Some(format!("{old}\n")));
    assert!(alive(old));

    // The next good save replaces it.
    ws.replace("api/src/main.rs", "std::process::exit(3);", "");
    let fixed = ready(&mut hot, "api");
    hot.wait_event("exited", EVENT_TIMEOUT, |e| e["pid"] == old);
    assert_eq!(http_get(port, "/pid"), Some(format!("{fixed}\n")));
}

#[test]
fn a_new_build_never_ready_is_stopped_at_the_timeout_and_the_old_one_serves() {
    let ws = Workspace::new();
    let mut hot = ws.hot(&[
        "-p",
        "api",
        "--listen",
        "127.0.0.1:0",
        "--ready",
        "log:^api listening on",
        "--ready-timeout",
        "3s",
    ]);
    let port = listening_port(&mut hot);
    let old = ready(&mut hot, "api");

    // The new build never prints the line the check waits for.
    ws.replace("api/src/main.rs", "\"api listening on", "\"api serving on");
    let new = hot.started("api");
    let failed = hot.wait_event("start-failed", BUILD_TIMEOUT, |_| true);
    assert_eq!(failed["pid"], new);
    assert_eq!(failed["reason"], "not ready within 3.0s");
    assert_eq!(failed["still_serving"], old);
    hot.wait_event("stopping", EVENT_TIMEOUT, |e| e["pid"] == new);
    hot.wait_event("exited", EVENT_TIMEOUT, |e| e["pid"] == new);
    assert_eq!(http_get(port, "/pid"), Some(format!("{old}\n")));
}

#[test]
fn notify_readiness_waits_for_ready_1_and_only_where_asked() {
    let ws = Workspace::new();
    // The api sends READY=1; the worker never does, so it must time out.
    let mut hot = ws.hot(&[
        "--bin",
        "api",
        "--bin",
        "worker",
        "--listen",
        "api=127.0.0.1:0",
        "--ready",
        "notify",
        "--ready-timeout",
        "3s",
    ]);
    let port = listening_port(&mut hot);
    let api = ready(&mut hot, "api");
    let failed = hot.wait_event("start-failed", BUILD_TIMEOUT, |e| e["target"] == "worker");
    assert_eq!(failed["reason"], "not ready within 3.0s");
    assert_eq!(http_get(port, "/pid"), Some(format!("{api}\n")));
}

fn environment(pid: u32) -> Vec<String> {
    let raw = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    raw.split(|b| *b == 0)
        .map(|v| String::from_utf8_lossy(v).into_owned())
        .filter(|v| v.starts_with("LISTEN_") || v.starts_with("NOTIFY_SOCKET"))
        .collect()
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "reads /proc, which only Linux has")]
fn listen_pid_is_the_childs_own_pid_and_only_socket_targets_get_fds() {
    let ws = Workspace::new();
    // As if cargo hot itself had been socket-activated: none of it may leak to a target.
    let mut hot = ws.hot_with_env(
        &[
            "--bin",
            "api",
            "--bin",
            "worker",
            "--listen",
            "api=127.0.0.1:0",
        ],
        &[
            ("LISTEN_FDS", "2"),
            ("LISTEN_PID", "1"),
            ("NOTIFY_SOCKET", "/nowhere"),
        ],
    );
    let port = listening_port(&mut hot);
    let [api, worker] = ready_all(&mut hot, ["api", "worker"]);
    let mut env = environment(api);
    env.sort();
    // A socket target may report READY=1 to end its grace early: to cargo hot's own notify
    // socket, never to the one cargo hot was given.
    let notify = env.pop().unwrap();
    assert!(
        notify.starts_with("NOTIFY_SOCKET=") && notify.contains("cargo-hot-notify-"),
        "{notify}"
    );
    assert_eq!(
        env,
        [
            format!("LISTEN_FDNAMES={port}"),
            "LISTEN_FDS=1".to_string(),
            format!("LISTEN_PID={api}")
        ]
    );
    let fd3 = std::fs::read_link(format!("/proc/{api}/fd/3")).unwrap();
    assert!(fd3.to_string_lossy().starts_with("socket:"), "{fd3:?}");
    assert_eq!(environment(worker), Vec::<String>::new());
    let fd3w = std::fs::read_link(format!("/proc/{worker}/fd/3"));
    assert!(fd3w.is_err(), "worker fd 3: {fd3w:?}");
    // And the api serves on the socket cargo hot bound.
    assert_eq!(http_get(port, "/pid"), Some(format!("{api}\n")));
}

#[test]
fn a_taken_port_is_a_clear_error_naming_the_address() {
    let ws = Workspace::new();
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let taken = holder.local_addr().unwrap().to_string();
    let mut hot = ws.hot(&["-p", "api", "--listen", &taken]);
    assert_eq!(hot.wait_exit(EVENT_TIMEOUT), Some(1));
    let stderr = hot.stderr();
    assert!(
        stderr.contains(&format!("failed to listen on {taken}")) && stderr.contains("in use"),
        "{stderr}"
    );
}

#[test]
fn a_ready_check_probing_our_own_socket_is_refused() {
    let ws = Workspace::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut hot = ws.hot(&[
        "-p",
        "api",
        "--listen",
        &format!("127.0.0.1:{port}"),
        "--ready",
        &format!("http://127.0.0.1:{port}/health"),
    ]);
    assert_eq!(hot.wait_exit(EVENT_TIMEOUT), Some(1));
    assert!(
        hot.stderr().contains("the old process would answer"),
        "{}",
        hot.stderr()
    );
    let mut hot = ws.hot(&["-p", "api", "--ready", "apx=notify"]);
    assert_eq!(hot.wait_exit(EVENT_TIMEOUT), Some(1));
    assert!(
        hot.stderr()
            .contains("`apx`, which is not a selected target")
            && hot.stderr().contains("api"),
        "{}",
        hot.stderr()
    );
}
