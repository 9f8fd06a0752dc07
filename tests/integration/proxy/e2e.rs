//! `cargo hot --proxy` end to end: the real binary on a copy of the fixture, whose `api`
//! binds the port it is given (`PORT`, or `--port`) and knows nothing of cargo hot.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use cargo_hot::proxy::RELOAD_SCRIPT_TAG;

use crate::harness::*;

/// One request on a new connection: `Ok((status, body))`, or what went wrong (refused,
/// reset, cut short).
pub fn request(port: u16, path: &str, accept: &str) -> Result<(u16, String), String> {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nAccept: {accept}\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut response = Vec::new();
    let read = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("no response ({read:?}): {text:?}"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("bad status line: {head:?}"))?;
    let length: Option<usize> = head.lines().find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.eq_ignore_ascii_case("content-length")
            .then(|| value.trim().parse().ok())?
    });
    if read.is_err() || length.is_some_and(|n| n != body.len()) {
        return Err(format!("cut ({read:?}): {text:?}"));
    }
    Ok((status, body.to_string()))
}

fn get(port: u16, path: &str) -> Result<(u16, String), String> {
    request(port, path, "*/*")
}

/// Starts cargo hot with `--proxy` on a free port for api; the port.
fn start(ws: &Workspace, extra: &[&str]) -> (Hot, u16) {
    let port = free_port();
    let addr = format!("127.0.0.1:{port}");
    let mut args = vec!["-p", "api", "--proxy", &addr];
    args.extend_from_slice(extra);
    let mut hot = ws.hot(&args);
    let event = hot.wait_event("proxying", EVENT_TIMEOUT, |_| true);
    assert_eq!(event["proxies"][0]["address"], addr.as_str());
    assert_eq!(event["proxies"][0]["target"], "api");
    (hot, port)
}

fn ready_pid(hot: &mut Hot) -> u32 {
    let event = hot.wait_event("ready", BUILD_TIMEOUT, |e| e["target"] == "api");
    event["pid"].as_u64().unwrap() as u32
}

/// Requests `path` one after another until told to stop; every failure, with its text.
fn client(
    port: u16,
    path: &'static str,
    stop: Arc<AtomicBool>,
) -> JoinHandle<(usize, Vec<String>)> {
    std::thread::spawn(move || {
        let (mut answered, mut failed) = (0, Vec::new());
        while !stop.load(Ordering::SeqCst) {
            match get(port, path) {
                Ok((200, body)) if body.starts_with("api v") => answered += 1,
                Ok((status, body)) => failed.push(format!("{status}: {body}")),
                Err(error) => failed.push(error),
            }
        }
        (answered, failed)
    })
}

#[test]
fn proxy_restarts_lose_no_request_under_load() {
    let ws = Workspace::new();
    let (mut hot, port) = start(&ws, &[]);
    let mut old = ready_pid(&mut hot);
    assert_eq!(get(port, "/").unwrap(), (200, "api v1\n".to_string()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients = [
        client(port, "/", stop.clone()),
        client(port, "/slow", stop.clone()),
    ];
    for version in ["v2", "v3", "v4"] {
        ws.replace(
            "core/src/lib.rs",
            &format!("VERSION: &str = \"{}\"", previous(version)),
            &format!("VERSION: &str = \"{version}\""),
        );
        let new = ready_pid(&mut hot);
        assert_ne!(new, old);
        // The old run is stopped only after its requests are answered.
        let stopping = hot.wait_event("stopping", BUILD_TIMEOUT, |e| e["pid"] == old);
        assert_eq!(stopping["reason"], "new build ready, requests answered");
        hot.exited(old);
        assert_eq!(get(port, "/").unwrap().1, format!("api {version}\n"));
        old = new;
    }
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        let (answered, failed) = client.join().unwrap();
        assert!(answered > 0);
        assert!(
            failed.is_empty(),
            "{} failed: {:?}",
            failed.len(),
            &failed[..failed.len().min(3)]
        );
    }
}

fn previous(version: &str) -> String {
    let n: u32 = version[1..].parse().unwrap();
    format!("v{}", n - 1)
}

#[test]
fn a_failed_first_build_answers_502_with_the_error_until_fixed() {
    let ws = Workspace::new();
    ws.replace(
        "core/src/lib.rs",
        "VERSION: &str = \"v1\"",
        "VERSION: &str = 1",
    );
    let (mut hot, port) = start(&ws, &[]);
    hot.wait_event("build-finished", BUILD_TIMEOUT, |e| e["ok"] == false);
    let (status, text) = get(port, "/").unwrap();
    assert_eq!(status, 502);
    assert!(text.contains("mismatched types"), "{text}");
    assert!(!text.contains('\x1b'), "plain text for curl: {text:?}");
    let (status, html) = request(port, "/page", "text/html").unwrap();
    assert_eq!(status, 502);
    assert!(html.contains("mismatched types") && html.contains(RELOAD_SCRIPT_TAG));

    ws.replace(
        "core/src/lib.rs",
        "VERSION: &str = 1",
        "VERSION: &str = \"v1\"",
    );
    ready_pid(&mut hot);
    assert_eq!(get(port, "/").unwrap(), (200, "api v1\n".to_string()));
}

#[test]
fn a_request_sent_during_the_first_build_is_answered() {
    let ws = Workspace::new();
    // Sent before cargo hot has even bound its port would be refused: after `proxying`,
    // while the first build runs, a request waits instead.
    let (mut hot, port) = start(&ws, &[]);
    let waiting = std::thread::spawn(move || get(port, "/"));
    ready_pid(&mut hot);
    assert_eq!(
        waiting.join().unwrap().unwrap(),
        (200, "api v1\n".to_string())
    );
}

#[test]
#[cfg_attr(not(target_os = "linux"), ignore = "reads /proc, which only Linux has")]
fn configured_proxy_with_its_own_port_variable_and_the_port_in_args() {
    let ws = Workspace::new();
    let port = free_port();
    let manifest = ws.read("Cargo.toml");
    ws.write(
        "Cargo.toml",
        &format!(
            "{manifest}\n[workspace.metadata.hot.targets.api]\nproxy = \"127.0.0.1:{port}\"\n\
             proxy-port-env = \"APP_PORT\"\nargs = [\"--port\", \"{{port}}\"]\n"
        ),
    );
    let mut hot = ws.hot(&["-p", "api"]);
    let pid = ready_pid(&mut hot);
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let args: Vec<String> = cmdline
        .split(|b| *b == 0)
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect();
    let environ = String::from_utf8_lossy(&std::fs::read(format!("/proc/{pid}/environ")).unwrap())
        .into_owned();
    let app_port = environ
        .split('\0')
        .find_map(|e| e.strip_prefix("APP_PORT="))
        .expect("APP_PORT is set")
        .to_string();
    assert_eq!(args[1..3], ["--port".to_string(), app_port.clone()]);
    assert!(!environ.split('\0').any(|e| e.starts_with("PORT=")));
    assert_ne!(app_port, port.to_string(), "the run has a port of its own");

    let (status, page) = request(port, "/page", "text/html").unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        page,
        format!("<!DOCTYPE html>\n<html><head><title>api</title></head>\n<body><h1>api v1</h1>{RELOAD_SCRIPT_TAG}</body></html>\n")
    );
}

#[test]
fn no_reload_leaves_the_page_alone() {
    let ws = Workspace::new();
    let (mut hot, port) = start(&ws, &["--no-reload"]);
    ready_pid(&mut hot);
    let (_, page) = request(port, "/page", "text/html").unwrap();
    assert!(page.contains("<h1>api v1</h1>") && !page.contains("__cargo_hot"));
}

#[test]
fn a_taken_proxy_address_is_named() {
    let ws = Workspace::new();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let mut hot = ws.hot(&["-p", "api", "--proxy", &addr]);
    assert_eq!(hot.wait_exit(EVENT_TIMEOUT), Some(1));
    let stderr = hot.stderr();
    assert!(
        stderr.contains(&addr) && stderr.contains("another process holds it"),
        "{stderr}"
    );
}
