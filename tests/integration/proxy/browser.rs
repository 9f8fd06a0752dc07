//! Live reload in a real browser: headless Chromium (Debian's `chromium` and
//! `chromium-driver`, installed by `.ci/run`) driven over WebDriver, on a page served through
//! the proxy while runs of a test app come and go as the engine would make them.
//!
//! Skipped, loudly, when `chromedriver` is not installed, except in CI (`CI=true`), where its
//! absence fails the test.

use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::json;

use super::backend::Backend;
use super::{setup, setup_on, Setup, TIMEOUT};
use cargo_hot::proxy::Options;

fn find_on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|path| path.is_file())
}

/// `chromedriver`, or `None` after saying loudly why this test does nothing.
fn chromedriver() -> Option<PathBuf> {
    if let Some(path) = find_on_path("chromedriver") {
        return Some(path);
    }
    let message = "chromedriver is not installed: the real-browser live-reload test cannot run \
                   (apt-get install chromium chromium-driver)";
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}; .ci/run installs it, so in CI this is a failure");
    }
    eprintln!("\n!!!!!!!!\n!!! SKIPPED: {message}\n!!!!!!!!\n");
    None
}

struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_driver(program: PathBuf) -> Driver {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(program)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let deadline = Instant::now() + TIMEOUT;
    let mut pause = Duration::from_millis(10);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "chromedriver did not listen on {port}"
        );
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(200));
    }
    Driver {
        child,
        port,
        _profile: tempfile::tempdir().unwrap(),
    }
}

async fn browser(driver: &Driver) -> Client {
    let profile = driver._profile.path().display().to_string();
    let mut capabilities = serde_json::Map::new();
    let mut options = json!({
        "args": [
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--disable-component-update", "--disable-sync", "--no-first-run",
            "--disable-dev-shm-usage", format!("--user-data-dir={profile}"),
        ],
    });
    if let Some(chromium) = find_on_path("chromium") {
        options["binary"] = json!(chromium);
    }
    capabilities.insert("goog:chromeOptions".into(), options);
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(capabilities)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("open a Chromium session")
}

/// Polls the page until `script` returns `want` (the page reloads by itself in between).
async fn wait_js(client: &Client, script: &str, want: serde_json::Value, what: &str) {
    let deadline = Instant::now() + TIMEOUT;
    let mut last = serde_json::Value::Null;
    while Instant::now() < deadline {
        // A reload in progress makes a script fail: try again.
        if let Ok(value) = client.execute(script, vec![]).await {
            if value == want {
                return;
            }
            last = value;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what}: `{script}` gave {last}, not {want}");
}

const HEADING: &str = "var h = document.querySelector('h1'); return h ? h.textContent : null;";
const CONNECTED: &str = "return !!(window.__cargoHot && window.__cargoHot.connected);";
const OVERLAY: &str = "var o = document.getElementById('__cargo_hot_overlay'); \
                       return o ? o.querySelector('pre').innerHTML : null;";

impl Setup {
    /// A new run replaces `old` as the engine does it: ready, routed, old retired, drained,
    /// stopped.
    fn replace(&self, old: Backend, name: &'static str) -> Backend {
        let new = self.start_ready(name);
        self.proxy.ready("web", u32::from(new.port));
        self.proxy.retire("web", old.port);
        let drained = self.drained(old.port, TIMEOUT);
        old.stop();
        drained.unwrap();
        new
    }
}

#[test]
fn the_page_reloads_shows_build_errors_and_recovers() {
    let Some(program) = chromedriver() else {
        return;
    };
    let driver = start_driver(program);
    let setup = setup(Options::default());
    let v1 = setup.start_ready("v1");
    let rt = super::runtime();
    rt.block_on(async {
        let client = browser(&driver).await;
        client
            .goto(&format!("http://{}/", setup.addr))
            .await
            .unwrap();
        wait_js(&client, HEADING, json!("v1"), "the first page").await;
        wait_js(&client, CONNECTED, json!(true), "the reload script connects").await;

        // An edit: a new run becomes ready, and the page shows it by itself.
        let v2 = setup.replace(v1, "v2");
        wait_js(&client, HEADING, json!("v2"), "the page after an edit").await;
        wait_js(&client, CONNECTED, json!(true), "the reloaded page connects").await;

        // A broken edit: the overlay shows cargo's error while the old run keeps answering.
        setup.proxy.building();
        setup
            .proxy
            .build_failed("\x1b[1m\x1b[31merror[E0308]\x1b[0m: mismatched <types>");
        wait_js(
            &client,
            OVERLAY,
            json!("<span style=\"font-weight:bold;color:#e05252;\">error[E0308]</span>: mismatched &lt;types&gt;"),
            "the error overlay",
        )
        .await;
        wait_js(&client, HEADING, json!("v2"), "the old page stays under the overlay").await;
        let answer = client
            .execute_async(
                "var done = arguments[0]; fetch('/text').then(r => r.text()).then(done);",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(answer, json!("v2"), "the old run keeps answering");

        // The fix: the next good run reloads the page, without the overlay.
        setup.proxy.building();
        let v3 = setup.replace(v2, "v3");
        wait_js(&client, HEADING, json!("v3"), "the page after the fix").await;
        wait_js(&client, OVERLAY, json!(null), "no overlay after the fix").await;
        wait_js(&client, CONNECTED, json!(true), "the page after the fix connects").await;

        // cargo hot itself restarts: the page reconnects, and follows the new session.
        let addr = setup.addr;
        drop(setup);
        drop(v3);
        wait_js(&client, CONNECTED, json!(false), "the page sees cargo hot go").await;
        let setup = setup_on(addr, Options::default());
        let v4 = setup.start_ready("v4");
        wait_js(&client, CONNECTED, json!(true), "the page reconnects").await;
        setup.proxy.ready("web", u32::from(v4.port));
        wait_js(&client, HEADING, json!("v4"), "the page after cargo hot restarted").await;
        client.close().await.unwrap();
    });
}

/// The same through the real binary: `cargo hot --proxy` on the fixture's api, edited on disk.
#[test]
fn cargo_hot_proxy_reloads_the_page_after_edits_and_shows_a_broken_build() {
    use crate::harness::{free_port, Workspace, BUILD_TIMEOUT};
    let Some(program) = chromedriver() else {
        return;
    };
    let driver = start_driver(program);
    let ws = Workspace::new();
    let port = free_port();
    let mut hot = ws.hot(&["-p", "api", "--proxy", &format!("127.0.0.1:{port}")]);
    let old = hot.wait_event("ready", BUILD_TIMEOUT, |e| e["target"] == "api")["pid"].clone();
    let rt = super::runtime();
    rt.block_on(async {
        let client = browser(&driver).await;
        client
            .goto(&format!("http://127.0.0.1:{port}/page"))
            .await
            .unwrap();
        wait_js(&client, HEADING, json!("api v1"), "the first page").await;
        wait_js(
            &client,
            CONNECTED,
            json!(true),
            "the reload script connects",
        )
        .await;

        // An edit: the page shows the new version by itself.
        ws.replace(
            "core/src/lib.rs",
            "VERSION: &str = \"v1\"",
            "VERSION: &str = \"v2\"",
        );
        wait_js(&client, HEADING, json!("api v2"), "the page after an edit").await;
        hot.exited(old.as_u64().unwrap() as u32);
        wait_js(
            &client,
            CONNECTED,
            json!(true),
            "the reloaded page connects",
        )
        .await;

        // A broken edit: the overlay shows cargo's error; the old run still answers.
        ws.replace(
            "core/src/lib.rs",
            "VERSION: &str = \"v2\"",
            "VERSION: &str = 2",
        );
        wait_js(
            &client,
            "var o = document.getElementById('__cargo_hot_overlay'); \
             return !!o && o.textContent.includes('mismatched types');",
            json!(true),
            "the error overlay",
        )
        .await;
        let answer = client
            .execute_async(
                "var done = arguments[0]; fetch('/').then(r => r.text()).then(done);",
                vec![],
            )
            .await
            .unwrap();
        assert_eq!(answer, json!("api v2\n"), "the old run keeps answering");

        // The fix: the page reloads with the new version, without the overlay.
        ws.replace(
            "core/src/lib.rs",
            "VERSION: &str = 2",
            "VERSION: &str = \"v3\"",
        );
        wait_js(&client, HEADING, json!("api v3"), "the page after the fix").await;
        wait_js(&client, OVERLAY, json!(null), "no overlay after the fix").await;
        client.close().await.unwrap();
    });
}
