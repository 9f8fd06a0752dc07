//! The proxy on its own (`cargo_hot::proxy`), in front of small test apps that the tests start,
//! route, retire and stop the way the engine does.

mod backend;
mod browser;
mod e2e;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cargo_hot::proxy::{Binding, Options, Proxy, ProxyMsg, RELOAD_SCRIPT_TAG};
use crossbeam_channel::Receiver;
use http_body_util::{BodyExt, Full};
use hyper::{HeaderMap, Request, StatusCode};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use backend::Backend;

const TIMEOUT: Duration = Duration::from_secs(30);

struct Setup {
    proxy: Proxy,
    msgs: Receiver<ProxyMsg>,
    addr: SocketAddr,
}

fn setup(options: Options) -> Setup {
    setup_on("127.0.0.1:0".parse().unwrap(), options)
}

fn setup_on(addr: SocketAddr, options: Options) -> Setup {
    let (tx, msgs) = crossbeam_channel::unbounded();
    let proxy = Proxy::bind(
        &[Binding {
            target: "web".into(),
            addr,
        }],
        options,
        tx,
    )
    .unwrap();
    let addr = proxy.bindings()[0].addr;
    Setup { proxy, msgs, addr }
}

impl Setup {
    /// Starts an app as the engine would: a fresh port, then routed once it listens.
    fn start_ready(&self, name: &'static str) -> Backend {
        let port = self.proxy.backend_port_for_new_run("web").unwrap();
        let backend = Backend::start(name, port);
        self.proxy.route("web", port);
        backend
    }

    /// Waits for the message that says the run on `port` may be stopped.
    fn drained(&self, port: u16, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.msgs.recv_timeout(left) {
                Ok(ProxyMsg::Drained { target, port: p }) if target == "web" && p == port => {
                    return Ok(())
                }
                Ok(_) => {}
                Err(e) => return Err(format!("no drained message for port {port}: {e}")),
            }
        }
    }

    fn notes(&self) -> Vec<String> {
        self.msgs
            .try_iter()
            .filter_map(|m| match m {
                ProxyMsg::Note(text) => Some(text),
                _ => None,
            })
            .collect()
    }
}

type TestClient = Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>>;

fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build_http()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

async fn send(
    client: &TestClient,
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Bytes,
) -> Result<Answer, String> {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("http://{addr}{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request.body(Full::new(body)).unwrap();
    let response = tokio::time::timeout(TIMEOUT, client.request(request))
        .await
        .map_err(|_| format!("{path}: no answer within {TIMEOUT:?}"))?
        .map_err(|e| format!("{path}: {e:?}"))?;
    let (parts, body) = response.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| format!("{path}: body cut: {e}"))?
        .to_bytes();
    Ok(Answer {
        status: parts.status,
        headers: parts.headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

async fn get(client: &TestClient, addr: SocketAddr, path: &str) -> Result<Answer, String> {
    send(client, addr, "GET", path, &[], Bytes::new()).await
}

#[test]
fn zero_failed_requests_across_restarts_under_load() {
    const NAMES: [&str; 6] = ["v0", "v1", "v2", "v3", "v4", "v5"];
    let setup = Arc::new(setup(Options::default()));
    let first = setup.start_ready(NAMES[0]);
    let done = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));

    // The engine's side: five restarts, each once the clients have made requests since the
    // last, each old run stopped as soon as the proxy says it has drained.
    let control = {
        let setup = setup.clone();
        let done = done.clone();
        let answered = answered.clone();
        std::thread::spawn(move || {
            let mut old = first;
            for name in &NAMES[1..] {
                let mark = answered.load(Ordering::SeqCst);
                let deadline = Instant::now() + TIMEOUT;
                while answered.load(Ordering::SeqCst) < mark + 20 && Instant::now() < deadline {
                    std::thread::yield_now();
                }
                let new = setup.start_ready(name);
                setup.proxy.retire("web", old.port);
                let drained = setup.drained(old.port, TIMEOUT);
                old.stop();
                drained.unwrap();
                old = new;
            }
            done.store(true, Ordering::SeqCst);
            old
        })
    };

    let rt = runtime();
    rt.block_on(async {
        let mut clients = Vec::new();
        for i in 0..4 {
            let (done, answered, failures) = (done.clone(), answered.clone(), failures.clone());
            let addr = setup.addr;
            // One client keeps requests in flight for 300 ms across every swap.
            let path = if i == 0 { "/slow" } else { "/text" };
            clients.push(tokio::spawn(async move {
                let client = client();
                while !done.load(Ordering::SeqCst) {
                    match get(&client, addr, path).await {
                        Ok(a) if a.status == StatusCode::OK && a.body.starts_with('v') => {
                            answered.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(a) => failures
                            .lock()
                            .unwrap()
                            .push(format!("{}: {}", a.status, a.body)),
                        Err(e) => failures.lock().unwrap().push(e),
                    }
                }
            }));
        }
        for c in clients {
            c.await.unwrap();
        }
    });
    let last = control.join().unwrap();
    let failures = failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} of {} requests failed: {:?}",
        failures.len(),
        answered.load(Ordering::SeqCst) + failures.len(),
        &failures[..failures.len().min(5)]
    );
    let answer = rt.block_on(get(&client(), setup.addr, "/text")).unwrap();
    assert_eq!(answer.body, "v5", "requests go to the newest run");
    drop(last);
}

/// Opens an upgraded connection through the proxy and returns it once the 101 is in.
fn upgrade(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        )
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(stream.read(&mut byte).unwrap(), 1, "the 101 head broke off");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head);
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("upgrade: websocket"),
        "{head}"
    );
    stream
}

fn echo(stream: &mut TcpStream, text: &str) -> String {
    stream.write_all(text.as_bytes()).unwrap();
    let mut buf = [0u8; 256];
    let n = stream.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn a_websocket_survives_until_the_old_run_drains() {
    let setup = setup(Options {
        stream_grace: Duration::from_secs(600),
        ..Options::default()
    });
    let v1 = setup.start_ready("v1");
    let mut socket = upgrade(setup.addr);
    assert_eq!(echo(&mut socket, "hello"), "v1:hello");

    let v2 = setup.start_ready("v2");
    setup.proxy.retire("web", v1.port);
    assert_eq!(
        echo(&mut socket, "still"),
        "v1:still",
        "the old run keeps its socket"
    );
    assert!(
        setup.msgs.try_recv().is_err(),
        "not drained while the socket is open"
    );
    let mut fresh = upgrade(setup.addr);
    assert_eq!(
        echo(&mut fresh, "new"),
        "v2:new",
        "new sockets go to the new run"
    );

    drop(socket);
    setup.drained(v1.port, TIMEOUT).unwrap();
    v1.stop();
    assert_eq!(echo(&mut fresh, "again"), "v2:again");
    drop(v2);
}

#[test]
fn open_streams_get_a_grace_period_then_the_run_is_drained() {
    let setup = setup(Options {
        stream_grace: Duration::from_millis(200),
        ..Options::default()
    });
    let v1 = setup.start_ready("v1");
    let mut socket = upgrade(setup.addr);
    assert_eq!(echo(&mut socket, "hello"), "v1:hello");
    let _v2 = setup.start_ready("v2");
    setup.proxy.retire("web", v1.port);
    setup.drained(v1.port, TIMEOUT).unwrap();
    assert_eq!(
        echo(&mut socket, "late"),
        "v1:late",
        "it is up to the engine to stop it"
    );
}

#[test]
fn the_app_event_stream_passes_unbuffered() {
    let setup = setup(Options::default());
    let _v1 = setup.start_ready("v1");
    let mut stream = TcpStream::connect(setup.addr).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream
        .write_all(b"GET /sse HTTP/1.1\r\nHost: localhost\r\nAccept: text/event-stream\r\n\r\n")
        .unwrap();
    // Both events arrive although the stream never ends.
    let text = read_until(&mut stream, "data: v1-2");
    assert!(text.contains("data: v1-1"), "{text}");
}

fn read_until(stream: &mut TcpStream, needle: &str) -> String {
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while !text.contains(needle) {
        let n = stream.read(&mut buf).unwrap_or(0);
        assert!(n > 0, "the stream ended before {needle:?}: {text}");
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    text
}

#[test]
fn reload_events_reach_every_listener() {
    let setup = setup(Options::default());
    let mut events = TcpStream::connect(setup.addr).unwrap();
    events.set_read_timeout(Some(TIMEOUT)).unwrap();
    events
        .write_all(b"GET /__cargo_hot/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let head = read_until(&mut events, ": cargo hot");
    assert!(head.contains("text/event-stream"), "{head}");
    setup.proxy.building();
    read_until(&mut events, "event: building\n");
    setup
        .proxy
        .build_failed("\x1b[1merror\x1b[0m: expected `;`\n --> src/main.rs:3:9");
    let failed = read_until(&mut events, "src/main.rs:3:9");
    assert!(
        failed.contains("event: build-failed\ndata: \x1b[1merror\x1b[0m: expected `;`\ndata:  --> src/main.rs:3:9"),
        "{failed:?}"
    );
    setup.proxy.ready("web", 4242);
    let ready = read_until(&mut events, "4242");
    assert!(
        ready.contains("event: ready\ndata: {\"pid\":4242,\"target\":\"web\"}"),
        "{ready}"
    );

    // A page loaded while the build is broken learns of the error at once.
    setup.proxy.build_failed("error: broken");
    let mut late = TcpStream::connect(setup.addr).unwrap();
    late.set_read_timeout(Some(TIMEOUT)).unwrap();
    late.write_all(b"GET /__cargo_hot/events HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    read_until(&mut late, "event: build-failed\ndata: error: broken");

    let rt = runtime();
    let script = rt
        .block_on(get(&client(), setup.addr, "/__cargo_hot/reload.js"))
        .unwrap();
    assert_eq!(script.status, StatusCode::OK);
    assert!(script.body.contains("EventSource(\"/__cargo_hot/events\")"));
    let other = rt
        .block_on(get(&client(), setup.addr, "/__cargo_hot/nothing"))
        .unwrap();
    assert_eq!(other.status, StatusCode::NOT_FOUND);
}

const BROWSER: &[(&str, &str)] = &[
    ("accept", "text/html,application/xhtml+xml,*/*;q=0.8"),
    ("accept-encoding", "gzip, br"),
];

#[test]
fn pages_get_the_script_with_a_fixed_length() {
    let setup = setup(Options::default());
    let _v1 = setup.start_ready("v1");
    let rt = runtime();
    let client = client();
    let page = rt
        .block_on(send(&client, setup.addr, "GET", "/", BROWSER, Bytes::new()))
        .unwrap();
    assert_eq!(
        page.body,
        format!("<html><body><h1>v1</h1><p>encoding=identity</p>{RELOAD_SCRIPT_TAG}</body></html>")
    );
    assert_eq!(
        page.headers["content-length"],
        page.body.len().to_string().as_str()
    );

    let text = rt.block_on(get(&client, setup.addr, "/text")).unwrap();
    assert_eq!(text.body, "v1", "only HTML is touched");

    let gzip = rt
        .block_on(send(
            &client,
            setup.addr,
            "GET",
            "/gzip",
            BROWSER,
            Bytes::new(),
        ))
        .unwrap();
    assert_eq!(
        gzip.body, "\u{1f}\u{fffd}not really gzip",
        "compressed pages pass as they are"
    );
    let notes = setup.notes();
    assert!(
        notes.iter().any(|n| n.contains("gzip-compressed")),
        "a skipped page is said under -v: {notes:?}"
    );
}

#[test]
fn no_reload_leaves_pages_alone() {
    let setup = setup(Options {
        reload: false,
        ..Options::default()
    });
    let _v1 = setup.start_ready("v1");
    let page = runtime()
        .block_on(send(
            &client(),
            setup.addr,
            "GET",
            "/",
            BROWSER,
            Bytes::new(),
        ))
        .unwrap();
    assert_eq!(
        page.body,
        "<html><body><h1>v1</h1><p>encoding=gzip, br</p></body></html>"
    );
}

#[test]
fn a_failed_build_with_no_run_answers_502_with_the_error() {
    let setup = setup(Options::default());
    setup
        .proxy
        .build_failed("\x1b[1m\x1b[31merror[E0425]\x1b[0m: cannot find value `x` <here>");
    let rt = runtime();
    let client = client();
    let html = rt
        .block_on(send(&client, setup.addr, "GET", "/", BROWSER, Bytes::new()))
        .unwrap();
    assert_eq!(html.status, StatusCode::BAD_GATEWAY);
    assert!(html.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(
        html.body.contains("<span style=\"font-weight:bold;color:#e05252;\">error[E0425]</span>: cannot find value `x` &lt;here&gt;"),
        "{}",
        html.body
    );
    assert!(
        html.body.contains(RELOAD_SCRIPT_TAG),
        "it recovers by itself"
    );

    let text = rt.block_on(get(&client, setup.addr, "/api")).unwrap();
    assert_eq!(text.status, StatusCode::BAD_GATEWAY);
    assert!(
        text.body
            .contains("error[E0425]: cannot find value `x` <here>"),
        "{}",
        text.body
    );
    assert!(!text.body.contains('\x1b'));
}

#[test]
fn requests_wait_while_nothing_is_ready() {
    let setup = Arc::new(setup(Options::default()));
    let rt = runtime();
    let addr = setup.addr;
    let answer = rt.block_on(async {
        let waiting = tokio::spawn(async move { get(&client(), addr, "/text").await });
        // The run starts once the request is in: a build and a start take this long.
        let starter = {
            let setup = setup.clone();
            tokio::task::spawn_blocking(move || {
                let port = setup.proxy.backend_port_for_new_run("web").unwrap();
                let backend = Backend::start("late", port);
                setup.proxy.route("web", port);
                backend
            })
        };
        let answer = waiting.await.unwrap();
        (answer, starter.await.unwrap())
    });
    assert_eq!(answer.0.unwrap().body, "late");
}

#[test]
fn a_crashed_run_makes_requests_wait_for_the_next() {
    let setup = setup(Options::default());
    let v1 = setup.start_ready("v1");
    let port = v1.port;
    v1.stop();
    let rt = runtime();
    let client = client();
    // The engine has not yet seen the exit: the request waits instead of failing.
    let answer = rt.block_on(async {
        let pending = get(&client, setup.addr, "/text");
        let restart = async {
            tokio::task::yield_now().await;
            setup.proxy.exited("web", port);
            let port = setup.proxy.backend_port_for_new_run("web").unwrap();
            let backend = Backend::start("v2", port);
            setup.proxy.route("web", port);
            backend
        };
        tokio::join!(pending, restart)
    });
    assert_eq!(answer.0.unwrap().body, "v2");
}

#[test]
fn waiting_ends_with_503_after_proxy_wait() {
    let setup = setup(Options {
        wait: Duration::from_millis(200),
        ..Options::default()
    });
    let answer = runtime()
        .block_on(get(&client(), setup.addr, "/text"))
        .unwrap();
    assert_eq!(answer.status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(
        answer.body.contains("No run of `web` became ready"),
        "{}",
        answer.body
    );
}

#[test]
fn large_uploads_stream_and_headers_are_forwarded() {
    let setup = setup(Options::default());
    let _v1 = setup.start_ready("v1");
    let rt = runtime();
    let client = client();
    let upload = Bytes::from(vec![b'x'; 32 << 20]);
    let answer = rt
        .block_on(send(&client, setup.addr, "POST", "/upload", &[], upload))
        .unwrap();
    assert_eq!(answer.body, (32 << 20).to_string());

    let headers = rt
        .block_on(send(
            &client,
            setup.addr,
            "PATCH",
            "/headers",
            &[("host", "app.example:8080"), ("x-custom", "kept")],
            Bytes::new(),
        ))
        .unwrap()
        .body;
    for line in [
        "host: app.example:8080",
        "x-custom: kept",
        "x-forwarded-for: 127.0.0.1",
        "x-forwarded-proto: http",
    ] {
        assert!(headers.contains(line), "{line} in {headers}");
    }
}
