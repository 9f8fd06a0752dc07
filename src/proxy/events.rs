//! The reserved `/__cargo_hot/` paths: the live-reload script and the SSE stream of build
//! and run events that it (and any editor) listens to.
//!
//! Events go out through a tokio broadcast channel, so the engine's thread can send without
//! waiting on slow readers; a reader that falls behind skips to the newest events.

use std::convert::Infallible;

use bytes::Bytes;
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::header::{HeaderValue, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::broadcast;

use super::{full, Body};

/// The prefix of every path cargo hot answers itself instead of the app.
pub const PREFIX: &str = "/__cargo_hot/";
pub const SCRIPT_PATH: &str = "/__cargo_hot/reload.js";
pub const EVENTS_PATH: &str = "/__cargo_hot/events";

const SCRIPT: &str = include_str!("reload.js");

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEvent {
    Building,
    /// cargo's rendered error, escape codes and all.
    BuildFailed(String),
    /// A build succeeded (any error overlay can go, even when nothing restarts).
    BuildOk,
    /// A new run is ready (also after a `[[watch]]` entry with `action = "restart"`).
    Ready {
        target: String,
        pid: u32,
    },
}

impl LiveEvent {
    /// The event in the SSE wire format: `event:` then one `data:` line per line of data.
    pub fn to_sse(&self) -> String {
        let (name, data) = match self {
            LiveEvent::Building => ("building", String::new()),
            LiveEvent::BuildFailed(rendered) => ("build-failed", rendered.clone()),
            LiveEvent::BuildOk => ("build-ok", String::new()),
            LiveEvent::Ready { target, pid } => (
                "ready",
                serde_json::json!({ "target": target, "pid": pid }).to_string(),
            ),
        };
        let mut out = format!("event: {name}\n");
        for line in data.split('\n') {
            out.push_str("data: ");
            out.push_str(line.strip_suffix('\r').unwrap_or(line));
            out.push('\n');
        }
        out.push('\n');
        out
    }
}

/// Answers a request under [`PREFIX`]. `failed` is the current build error, sent first to a
/// new listener so a page loaded while the build is broken shows the overlay at once.
pub fn answer(
    req: &Request<hyper::body::Incoming>,
    events: &broadcast::Sender<LiveEvent>,
    failed: Option<String>,
) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return status(StatusCode::METHOD_NOT_ALLOWED, "only GET\n");
    }
    match req.uri().path() {
        SCRIPT_PATH => {
            let mut response = Response::new(full(SCRIPT));
            let headers = response.headers_mut();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("text/javascript; charset=utf-8"),
            );
            headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            response
        }
        EVENTS_PATH => stream(events.subscribe(), failed),
        _ => status(
            StatusCode::NOT_FOUND,
            "cargo hot reserves /__cargo_hot/ for its live reload: \
             /__cargo_hot/reload.js and /__cargo_hot/events\n",
        ),
    }
}

fn stream(mut rx: broadcast::Receiver<LiveEvent>, failed: Option<String>) -> Response<Body> {
    let (mut tx, body) = http_body_util::channel::Channel::<Bytes, Infallible>::new(8);
    tokio::spawn(async move {
        // A comment first: the browser sees the stream open, and a proxy in between flushes.
        let mut first = String::from(": cargo hot\nretry: 1000\n\n");
        if let Some(rendered) = failed {
            first.push_str(&LiveEvent::BuildFailed(rendered).to_sse());
        }
        if tx.send_data(Bytes::from(first)).await.is_err() {
            return;
        }
        loop {
            let event = match rx.recv().await {
                Ok(event) => event,
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => return,
            };
            if tx
                .send(Frame::data(Bytes::from(event.to_sse())))
                .await
                .is_err()
            {
                return;
            }
        }
    });
    let mut response = Response::new(body.map_err(|never| match never {}).boxed_unsync());
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

fn status(code: StatusCode, text: &'static str) -> Response<Body> {
    let mut response = Response::new(full(text));
    *response.status_mut() = code;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_follow_the_sse_format() {
        assert_eq!(LiveEvent::Building.to_sse(), "event: building\ndata: \n\n");
        assert_eq!(
            LiveEvent::BuildFailed("error: one\r\n  two".into()).to_sse(),
            "event: build-failed\ndata: error: one\ndata:   two\n\n"
        );
        assert_eq!(
            LiveEvent::Ready {
                target: "web".into(),
                pid: 42
            }
            .to_sse(),
            "event: ready\ndata: {\"pid\":42,\"target\":\"web\"}\n\n"
        );
    }
}
