//! Accepting connections and deciding, per request, who answers: cargo hot itself (the
//! reserved paths, the build error, the timeout) or a run of the app.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use hyper::body::{Body as _, Incoming};
use hyper::header::CONTENT_TYPE;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::sync::oneshot;

use super::events::{self, PREFIX};
use super::forward::{self, Client, Failure, Outgoing};
use super::routes::{Pick, Use};
use super::{inject, page, Binding, Body, BodyExt as _, Shared};

/// Serves every listener until `stopped` fires (or its sender is dropped).
pub async fn serve(
    shared: Arc<Shared>,
    listeners: Vec<std::net::TcpListener>,
    bindings: Vec<Binding>,
    stopped: oneshot::Receiver<()>,
) {
    let client = forward::client();
    for (listener, binding) in listeners.into_iter().zip(bindings) {
        // Proxy::bind made routes for every binding's target.
        let Some(target) = shared.routes().index_of(&binding.target) else {
            continue;
        };
        match tokio::net::TcpListener::from_std(listener) {
            Ok(listener) => {
                tokio::spawn(accept(listener, shared.clone(), client.clone(), target));
            }
            Err(error) => shared.note(format!("the proxy cannot serve {}: {error}", binding.addr)),
        }
    }
    tokio::spawn(drain_timer(shared.clone()));
    let _ = stopped.await;
}

async fn accept(
    listener: tokio::net::TcpListener,
    shared: Arc<Shared>,
    client: Client,
    target: usize,
) {
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                // Out of file descriptors and the like: say so, pause, go on serving.
                shared.note(format!("the proxy failed to accept a connection: {error}"));
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let shared = shared.clone();
        let client = client.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let shared = shared.clone();
                let client = client.clone();
                async move { Ok::<_, Infallible>(handle(shared, client, target, peer, req).await) }
            });
            // Errors here are the client going away mid-request: nothing to report.
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

/// Reports retired runs whose grace period has ended, waking up for the earliest one.
async fn drain_timer(shared: Arc<Shared>) {
    loop {
        let next = shared.routes().next_deadline();
        let sleep = async {
            match next {
                Some(at) => tokio::time::sleep_until(at.into()).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            () = sleep => {
                let drained = shared.routes().tick(Instant::now());
                shared.report(drained);
            }
            () = shared.timer.notified() => {}
        }
    }
}

/// A request's hold on the run it was sent to: released when the response ends.
struct Lease {
    shared: Arc<Shared>,
    target: usize,
    port: u16,
    kind: Use,
}

impl Lease {
    fn into_stream(mut self) -> Lease {
        let drained = self
            .shared
            .routes()
            .became_stream(self.target, self.port, Instant::now());
        self.kind = Use::Stream;
        self.shared.report(drained);
        self.shared.timer.notify_one();
        self
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let drained =
            self.shared
                .routes()
                .finished(self.target, self.port, self.kind, Instant::now());
        self.shared.report(drained);
        self.shared.timer.notify_one();
    }
}

async fn handle(
    shared: Arc<Shared>,
    client: Client,
    target: usize,
    peer: SocketAddr,
    mut req: Request<Incoming>,
) -> Response<Body> {
    if req.uri().path().starts_with(PREFIX) {
        let failed = shared.routes().failed().map(str::to_string);
        return events::answer(&req, &shared.events, failed);
    }
    let html = page::wants_html(req.headers());
    let page_load = shared.options.reload && req.method() == Method::GET && html;
    let client_upgrade = hyper::upgrade::on(&mut req);
    let (parts, body) = req.into_parts();
    let method = parts.method.clone();
    let outgoing = Outgoing::new(parts, peer, page_load);
    let client_upgrade = outgoing.is_upgrade().then_some(client_upgrade);
    // A request without a body can go to another run if its first one is gone.
    let replayable = body.is_end_stream();
    let mut body = Some(body);
    let deadline = Instant::now() + shared.options.wait;
    let mut changes = shared.changed.subscribe();
    loop {
        changes.borrow_and_update();
        let pick = shared.routes().pick(target);
        match pick {
            Pick::Forward(port) => {
                let lease = Lease {
                    shared: shared.clone(),
                    target,
                    port,
                    kind: Use::Request,
                };
                let body = match (replayable, body.take()) {
                    (false, Some(body)) => forward::into_body(body),
                    _ => super::full(bytes::Bytes::new()),
                };
                match outgoing.send(&client, port, body).await {
                    Ok(response) => {
                        return answer(&shared, lease, response, client_upgrade, &method).await
                    }
                    Err(Failure::Connect(error)) if replayable => {
                        drop(lease);
                        shared.note(format!(
                            "the run on port {port} refused a connection ({error}); waiting for another"
                        ));
                    }
                    Err(Failure::Connect(error) | Failure::Other(error)) => {
                        let name = shared.routes().name(target).to_string();
                        return page::bad_gateway(&name, &error);
                    }
                }
            }
            Pick::Failed(rendered) => return page::build_failed(&rendered, html),
            Pick::Wait => {}
        }
        let changed = tokio::time::timeout_at(deadline.into(), changes.changed()).await;
        if changed.is_err() {
            let name = shared.routes().name(target).to_string();
            return page::not_ready(&name, shared.options.wait.as_secs(), html);
        }
    }
}

/// The app's answer on its way back: upgrades piped, streams marked, pages injected, and
/// the lease held until the body ends.
async fn answer(
    shared: &Arc<Shared>,
    lease: Lease,
    mut response: Response<Incoming>,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    method: &Method,
) -> Response<Body> {
    if response.status() == StatusCode::SWITCHING_PROTOCOLS {
        if let Some(client_upgrade) = client_upgrade {
            let lease = lease.into_stream();
            forward::pipe_upgrade(client_upgrade, &mut response, move || drop(lease));
        }
        let (parts, _) = response.into_parts();
        return Response::from_parts(parts, super::full(bytes::Bytes::new()));
    }
    let sse = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.trim_start().starts_with("text/event-stream"));
    let lease = if sse { lease.into_stream() } else { lease };
    let inject = shared.options.reload
        && match inject::decide(method, response.status(), response.headers()) {
            Ok(inject) => inject,
            Err(reason) => {
                shared.note(format!("live reload left a page alone: {reason}"));
                false
            }
        };
    let mut response = response.map(forward::into_body);
    if inject {
        response = match inject::into_injected(response).await {
            Ok(injected) => injected,
            Err(error) => {
                let name = shared.routes().name(lease.target).to_string();
                return page::bad_gateway(&name, &error);
            }
        };
    }
    response.map(move |body| {
        body.map_frame(move |frame| {
            let _held = &lease;
            frame
        })
        .boxed_unsync()
    })
}
