//! Proxy mode (`--proxy`): cargo hot serves HTTP on the user's address and forwards every
//! request to the newest ready run of the app, which binds a fresh loopback port of its own
//! (from `PORT`). Apps need no socket handoff, restarts lose no request, and HTML pages get a
//! script that reloads them when a new run is ready and shows build errors in the page.
//!
//! The HTTP side is hyper on a current-thread tokio runtime of its own thread; the rest of
//! cargo hot stays threads and crossbeam. The engine talks to it through [`Proxy`], whose
//! methods are plain synchronous calls, and hears back through [`ProxyMsg`]s on a crossbeam
//! channel (a retired run has drained and may be stopped; notes for `-v`).
//!
//! Files: [`routes`] decides where a request goes and when a replaced run has drained (pure
//! state); [`server`] accepts and dispatches; [`forward`] talks to the app; [`inject`] puts
//! the script into pages; [`events`] serves the reserved `/__cargo_hot/` paths; [`page`] is
//! cargo hot's own answers (the build error, the timeout); [`launch`] is what the engine needs
//! to start a proxied run (its port, its readiness).

mod events;
mod forward;
mod inject;
pub mod launch;
mod page;
mod routes;
mod server;

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use crossbeam_channel::Sender;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::BodyExt;
use tokio::sync::{broadcast, watch, Notify};

use crate::sockets::{ListenAddr, ListenSpec};

pub use events::{LiveEvent, PREFIX as RESERVED_PREFIX};
use routes::{Drained, Limits, Routes};

pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;
pub(crate) type Body = UnsyncBoxBody<Bytes, BoxError>;

/// What goes into every HTML page (unless `--no-reload`).
pub const RELOAD_SCRIPT_TAG: &str = "<script src=\"/__cargo_hot/reload.js\"></script>";

/// How long requests wait for a ready run by default (`--proxy-wait`).
pub const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// How long a replaced run keeps its open WebSocket and SSE streams.
pub const STREAM_GRACE: Duration = Duration::from_secs(5);

/// How long a replaced run is waited for at most, however busy.
const RETIRE_LIMIT: Duration = Duration::from_secs(60);

pub(crate) fn full(data: impl Into<Bytes>) -> Body {
    http_body_util::Full::new(data.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

/// `--proxy [TARGET=]ADDR` as written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySpec {
    pub target: Option<String>,
    pub addr: SocketAddr,
}

impl ProxySpec {
    /// The same addresses as `--listen` (`3000` and `:3000` are loopback), TCP only.
    pub fn parse(text: &str, cwd: &Path) -> Result<ProxySpec> {
        let spec = ListenSpec::parse(text, cwd)
            .map_err(|e| anyhow::anyhow!("{}", format!("{e:#}").replace("--listen", "--proxy")))?;
        match spec.addr {
            ListenAddr::Tcp(addr) => Ok(ProxySpec {
                target: spec.target,
                addr,
            }),
            ListenAddr::Unix(_) => {
                bail!("invalid --proxy `{text}`: the proxy serves HTTP on TCP only, not unix:")
            }
        }
    }
}

/// One address to serve, and the target whose runs answer there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Binding {
    pub target: String,
    pub addr: SocketAddr,
}

#[derive(Debug, Clone)]
pub struct Options {
    /// How long a request waits for a ready run.
    pub wait: Duration,
    /// Inject the live-reload script into pages.
    pub reload: bool,
    pub stream_grace: Duration,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            wait: DEFAULT_WAIT,
            reload: true,
            stream_grace: STREAM_GRACE,
        }
    }
}

/// What the proxy tells the engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProxyMsg {
    /// A retired run finished its requests (and its streams had their grace): stop it now.
    Drained { target: String, port: u16 },
    /// Something worth saying under `-v` (a page left without the script, and why).
    Note(String),
}

/// State shared by the engine's calls and the proxy's tasks.
pub(crate) struct Shared {
    routes: Mutex<Routes>,
    /// Bumped whenever routing changes, to wake waiting requests.
    changed: watch::Sender<u64>,
    /// Wakes the timer that reports drained runs when their grace period ends.
    timer: Notify,
    events: broadcast::Sender<LiveEvent>,
    msgs: Sender<ProxyMsg>,
    options: Options,
}

impl Shared {
    fn routes(&self) -> MutexGuard<'_, Routes> {
        // A panic elsewhere cannot leave the routes half-changed: every change is one call.
        self.routes.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Runs an engine call on the routes and wakes everyone who waits on a change.
    fn change<R>(&self, f: impl FnOnce(&mut Routes, Instant) -> R) -> R {
        let result = f(&mut self.routes(), Instant::now());
        self.changed.send_modify(|generation| *generation += 1);
        self.timer.notify_one();
        result
    }

    fn report(&self, drained: impl IntoIterator<Item = Drained>) {
        for Drained { target, port } in drained {
            let _ = self.msgs.send(ProxyMsg::Drained { target, port });
        }
    }

    fn note(&self, text: String) {
        let _ = self.msgs.send(ProxyMsg::Note(text));
    }
}

/// The running proxy. Dropping it stops serving.
pub struct Proxy {
    shared: Arc<Shared>,
    local: Vec<Binding>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Proxy {
    /// Binds every address (or fails naming the one that could not be bound) and starts
    /// serving on a thread of its own.
    pub fn bind(bindings: &[Binding], options: Options, msgs: Sender<ProxyMsg>) -> Result<Proxy> {
        let mut listeners = Vec::new();
        let mut local = Vec::new();
        for binding in bindings {
            let listener = TcpListener::bind(binding.addr)
                .map_err(|e| bind_error(e, binding.addr))
                .with_context(|| format!("failed to serve --proxy on {}", binding.addr))?;
            listener
                .set_nonblocking(true)
                .context("failed to make the proxy socket non-blocking")?;
            let addr = listener
                .local_addr()
                .context("failed to read the proxy's bound address")?;
            local.push(Binding {
                target: binding.target.clone(),
                addr,
            });
            listeners.push(listener);
        }
        let mut names: Vec<String> = Vec::new();
        for binding in bindings {
            if !names.contains(&binding.target) {
                names.push(binding.target.clone());
            }
        }
        let routes = Routes::new(
            names,
            Limits {
                stream_grace: options.stream_grace,
                retire_limit: RETIRE_LIMIT.max(options.stream_grace),
            },
        );
        let shared = Arc::new(Shared {
            routes: Mutex::new(routes),
            changed: watch::channel(0).0,
            timer: Notify::new(),
            events: broadcast::channel(64).0,
            msgs,
            options,
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .context("failed to start the proxy's runtime")?;
        let (shutdown, stopped) = tokio::sync::oneshot::channel();
        let served = local.clone();
        let task_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("hot-proxy".into())
            .spawn(move || {
                runtime.block_on(server::serve(task_shared, listeners, served, stopped));
            })
            .context("failed to start the proxy thread")?;
        Ok(Proxy {
            shared,
            local,
            shutdown: Some(shutdown),
            thread: Some(thread),
        })
    }

    /// The addresses served (port 0 replaced by the port the kernel chose).
    pub fn bindings(&self) -> &[Binding] {
        &self.local
    }

    /// Whether requests for `target` come through the proxy.
    pub fn proxies(&self, target: &str) -> bool {
        self.shared.routes().index_of(target).is_some()
    }

    /// A free loopback port for a run of `target` that is about to start; the run counts as
    /// existing from now on (requests wait for it rather than get an old build error).
    pub fn backend_port_for_new_run(&self, target: &str) -> Result<u16> {
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
            .and_then(|l| l.local_addr())
            .context("failed to find a free loopback port for the app")?
            .port();
        self.shared.change(|routes, _| {
            if let Some(index) = routes.index_of(target) {
                routes.starting(index, port);
            }
        });
        Ok(port)
    }

    /// The run of `target` on `port` is ready: new requests go to it.
    pub fn route(&self, target: &str, port: u16) {
        self.shared.change(|routes, _| {
            if let Some(index) = routes.index_of(target) {
                routes.route(index, port);
            }
        });
    }

    /// The run on `port` is replaced: it gets no new requests, and a [`ProxyMsg::Drained`]
    /// says when it may be stopped.
    pub fn retire(&self, target: &str, port: u16) {
        let drained = self.shared.change(|routes, now| {
            routes
                .index_of(target)
                .and_then(|index| routes.retire(index, port, now))
        });
        self.shared.report(drained);
    }

    /// The run on `port` exited (stopped, or crashed): requests wait for another.
    pub fn exited(&self, target: &str, port: u16) {
        self.shared.change(|routes, _| {
            if let Some(index) = routes.index_of(target) {
                routes.exited(index, port);
            }
        });
    }

    pub fn building(&self) {
        self.shared.change(|routes, _| routes.building());
        let _ = self.shared.events.send(LiveEvent::Building);
    }

    /// A build failed; `rendered` is cargo's error as it printed it.
    pub fn build_failed(&self, rendered: &str) {
        let rendered = rendered.to_string();
        self.shared
            .change(|routes, _| routes.build_failed(rendered.clone()));
        let _ = self.shared.events.send(LiveEvent::BuildFailed(rendered));
    }

    pub fn build_ok(&self) {
        let _ = self.shared.events.send(LiveEvent::BuildOk);
    }

    /// A run of `target` became ready: pages reload.
    pub fn ready(&self, target: &str, pid: u32) {
        let _ = self.shared.events.send(LiveEvent::Ready {
            target: target.to_string(),
            pid,
        });
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn bind_error(error: std::io::Error, addr: SocketAddr) -> anyhow::Error {
    let hint = match error.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            "; another process holds it (`ss -ltnp 'sport = :{}'` shows which): stop it or choose another --proxy address",
            addr.port()
        ),
        std::io::ErrorKind::PermissionDenied if addr.port() < 1024 => {
            "; ports below 1024 need privileges: choose a port above 1023".to_string()
        }
        std::io::ErrorKind::AddrNotAvailable => {
            "; that address belongs to no interface of this machine".to_string()
        }
        _ => String::new(),
    };
    anyhow::anyhow!("{error}{hint}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_addresses_parse_like_listen_ones_but_tcp_only() {
        let cwd = Path::new("/w");
        assert_eq!(
            ProxySpec::parse("web=3000", cwd).unwrap(),
            ProxySpec {
                target: Some("web".into()),
                addr: "127.0.0.1:3000".parse().unwrap()
            }
        );
        assert_eq!(
            ProxySpec::parse(":8080", cwd).unwrap().addr,
            "127.0.0.1:8080".parse().unwrap()
        );
        let error = ProxySpec::parse("unix:/tmp/x.sock", cwd).unwrap_err();
        assert!(error.to_string().contains("TCP only"), "{error}");
        let error = ProxySpec::parse("nonsense:xyz", cwd).unwrap_err();
        assert!(error.to_string().contains("--proxy"), "{error}");
    }

    #[test]
    fn a_taken_address_is_named() {
        let taken = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = taken.local_addr().unwrap();
        let (tx, _rx) = crossbeam_channel::unbounded();
        let error = Proxy::bind(
            &[Binding {
                target: "web".into(),
                addr,
            }],
            Options::default(),
            tx,
        )
        .err()
        .expect("the address is taken");
        let text = format!("{error:#}");
        assert!(text.contains(&addr.to_string()), "{text}");
        assert!(text.contains("another process holds it"), "{text}");
    }
}
