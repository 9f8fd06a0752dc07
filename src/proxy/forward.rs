//! Forwarding one request to one run, and its answer back: hop-by-hop headers dropped,
//! `X-Forwarded-*` added, bodies streamed both ways by hyper (chunked or sized), and a `101
//! Switching Protocols` turned into a byte pipe between the two upgraded connections.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::http::request::Parts;
use hyper::{Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};

use super::Body;

/// One client for every run: it keeps idle connections to each run's port, so a keep-alive
/// browser costs the app no new connection per request.
pub type Client = hyper_util::client::legacy::Client<HttpConnector, Body>;

pub fn client() -> Client {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    hyper_util::client::legacy::Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector)
}

/// Why a request got no answer from the run.
pub enum Failure {
    /// The run did not accept the connection (it is gone or going): worth another run.
    Connect(String),
    Other(String),
}

/// The request head as it goes to the app, kept so a request without a body can be sent
/// again to another run.
pub struct Outgoing {
    parts: Parts,
    upgrade: bool,
}

impl Outgoing {
    /// `identity`: ask for an uncompressed answer (page loads, so the script can go in).
    pub fn new(mut parts: Parts, peer: SocketAddr, identity: bool) -> Outgoing {
        let upgrade = is_upgrade(&parts.headers);
        remove_hop_by_hop(&mut parts.headers, upgrade);
        // hyper answered `100 Continue` to the client already, as soon as the body was read;
        // passed on, the app would wait to send its own to a client that is not waiting.
        parts.headers.remove(header::EXPECT);
        let forwarded_for = match parts.headers.get("x-forwarded-for") {
            Some(earlier) => format!("{}, {}", earlier.to_str().unwrap_or(""), peer.ip()),
            None => peer.ip().to_string(),
        };
        if let Ok(value) = HeaderValue::from_str(&forwarded_for) {
            parts.headers.insert("x-forwarded-for", value);
        }
        parts
            .headers
            .entry("x-forwarded-proto")
            .or_insert(HeaderValue::from_static("http"));
        if identity {
            parts.headers.insert(
                header::ACCEPT_ENCODING,
                HeaderValue::from_static("identity"),
            );
        }
        Outgoing { parts, upgrade }
    }

    pub fn is_upgrade(&self) -> bool {
        self.upgrade
    }

    fn request(&self, port: u16, body: Body) -> Result<Request<Body>, String> {
        let path = self.parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let addr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port);
        let uri: Uri = format!("http://{addr}{path}")
            .parse()
            .map_err(|e| format!("bad request path `{path}`: {e}"))?;
        let mut request = Request::new(body);
        *request.method_mut() = self.parts.method.clone();
        *request.uri_mut() = uri;
        *request.version_mut() = Version::HTTP_11;
        *request.headers_mut() = self.parts.headers.clone();
        Ok(request)
    }

    /// Sends the request to the run on `port` and returns its answer, hop-by-hop headers gone.
    pub async fn send(
        &self,
        client: &Client,
        port: u16,
        body: Body,
    ) -> Result<Response<hyper::body::Incoming>, Failure> {
        let request = self.request(port, body).map_err(Failure::Other)?;
        match client.request(request).await {
            Ok(mut response) => {
                let switching = response.status() == StatusCode::SWITCHING_PROTOCOLS;
                remove_hop_by_hop(response.headers_mut(), switching);
                Ok(response)
            }
            Err(error) if error.is_connect() => Err(Failure::Connect(chain(&error))),
            Err(error) => Err(Failure::Other(chain(&error))),
        }
    }
}

/// Joins the client's and the app's upgraded connections once both sides have switched, and
/// copies bytes both ways until either closes. `on_close` runs when the pipe ends.
pub fn pipe_upgrade(
    client_side: hyper::upgrade::OnUpgrade,
    response: &mut Response<hyper::body::Incoming>,
    on_close: impl FnOnce() + Send + 'static,
) {
    let app_side = hyper::upgrade::on(response);
    tokio::spawn(async move {
        if let (Ok(client), Ok(app)) = tokio::join!(client_side, app_side) {
            let mut client = TokioIo::new(client);
            let mut app = TokioIo::new(app);
            let _ = tokio::io::copy_bidirectional(&mut client, &mut app).await;
        }
        on_close();
    });
}

pub fn into_body(incoming: hyper::body::Incoming) -> Body {
    incoming.map_err(Into::into).boxed_unsync()
}

fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE)
        && headers
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

/// Drops the headers that belong to one connection (RFC 9110 §7.6.1), except `Connection`
/// and `Upgrade` on an upgrade, which the other side needs to switch protocols too.
fn remove_hop_by_hop(headers: &mut HeaderMap, keep_upgrade: bool) {
    let named: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|t| HeaderName::from_bytes(t.trim().as_bytes()).ok())
        .collect();
    for name in named {
        if !(keep_upgrade && name == header::UPGRADE) {
            headers.remove(name);
        }
    }
    for name in [
        header::TE,
        header::TRAILER,
        header::TRANSFER_ENCODING,
        HeaderName::from_static("keep-alive"),
        HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
    if keep_upgrade {
        headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    } else {
        headers.remove(header::CONNECTION);
        headers.remove(header::UPGRADE);
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&'static str, &'static str)]) -> Parts {
        let mut request = Request::new(());
        *request.uri_mut() = "/a/b?c=1".parse().unwrap();
        for (name, value) in headers {
            request
                .headers_mut()
                .append(*name, HeaderValue::from_static(value));
        }
        request.into_parts().0
    }

    fn peer() -> SocketAddr {
        "192.0.2.7:5555".parse().unwrap()
    }

    #[test]
    fn host_is_kept_and_forwarding_headers_added() {
        let out = Outgoing::new(
            parts(&[
                ("host", "example.test:3000"),
                ("connection", "keep-alive, x-secret"),
                ("x-secret", "1"),
                ("keep-alive", "timeout=5"),
                ("x-forwarded-for", "10.0.0.1"),
                ("expect", "100-continue"),
            ]),
            peer(),
            true,
        );
        let request = out
            .request(
                4001,
                http_body_util::Empty::new()
                    .map_err(|n| match n {})
                    .boxed_unsync(),
            )
            .unwrap();
        let h = request.headers();
        assert_eq!(request.uri(), "http://127.0.0.1:4001/a/b?c=1");
        assert_eq!(h["host"], "example.test:3000");
        assert_eq!(h["x-forwarded-for"], "10.0.0.1, 192.0.2.7");
        assert_eq!(h["x-forwarded-proto"], "http");
        assert_eq!(h["accept-encoding"], "identity");
        for gone in ["connection", "x-secret", "keep-alive", "expect"] {
            assert!(!h.contains_key(gone), "{gone} is hop-by-hop");
        }
        assert!(!out.is_upgrade());
    }

    #[test]
    fn an_upgrade_keeps_its_connection_headers() {
        let out = Outgoing::new(
            parts(&[("connection", "Upgrade"), ("upgrade", "websocket")]),
            peer(),
            false,
        );
        assert!(out.is_upgrade());
        let request = out
            .request(
                4001,
                http_body_util::Empty::new()
                    .map_err(|n| match n {})
                    .boxed_unsync(),
            )
            .unwrap();
        assert_eq!(request.headers()["connection"], "upgrade");
        assert_eq!(request.headers()["upgrade"], "websocket");
        assert!(!request.headers().contains_key("accept-encoding"));
    }
}
