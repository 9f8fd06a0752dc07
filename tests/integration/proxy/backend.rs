//! Small test apps for the proxy: each runs on a thread of its own with its own runtime, and
//! stopping one drops that runtime, which closes its listener and every connection at once,
//! as a killed process would.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Frame, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

type Body = UnsyncBoxBody<Bytes, hyper::Error>;

pub struct Backend {
    pub port: u16,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Backend {
    /// Serves on 127.0.0.1:`port`, answering as `name`:
    /// - `/` an HTML page naming it and the Accept-Encoding it was asked for;
    /// - `/text` its name as text; `/gzip` an HTML page that claims gzip;
    /// - `/slow` its name after 300 ms; `/headers` the request headers;
    /// - `POST /upload` the number of bytes received;
    /// - `/sse` one event at once, a second one when the client sends nothing for 100 ms,
    ///   then nothing more until closed;
    /// - an Upgrade: 101, then each chunk of bytes echoed back prefixed with its name.
    pub fn start(name: &'static str, port: u16) -> Backend {
        let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("bind backend");
        listener.set_nonblocking(true).unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let accept = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        tokio::spawn(async move {
                            let service = service_fn(move |req| serve(name, req));
                            let _ = hyper::server::conn::http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .with_upgrades()
                                .await;
                        });
                    }
                };
                tokio::select! {
                    () = accept => {}
                    _ = stopped => {}
                }
            });
        });
        Backend {
            port,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Backend {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn full(text: impl Into<Bytes>) -> Body {
    Full::new(text.into())
        .map_err(|never| match never {})
        .boxed_unsync()
}

fn respond(content_type: &str, body: Body) -> Response<Body> {
    Response::builder()
        .header("content-type", content_type)
        .body(body)
        .unwrap()
}

async fn serve(
    name: &'static str,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    if req.headers().contains_key("upgrade") {
        let upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let Ok(upgraded) = upgrade.await else { return };
            let mut io = TokioIo::new(upgraded);
            let mut buf = [0u8; 1024];
            while let Ok(n) = io.read(&mut buf).await {
                if n == 0 {
                    return;
                }
                let mut reply = format!("{name}:").into_bytes();
                reply.extend_from_slice(&buf[..n]);
                if io.write_all(&reply).await.is_err() {
                    return;
                }
            }
        });
        return Ok(Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .body(full(""))
            .unwrap());
    }
    let path = req.uri().path().to_string();
    Ok(match path.as_str() {
        "/" => {
            let encoding = req
                .headers()
                .get("accept-encoding")
                .map_or("none", |v| v.to_str().unwrap_or("?"))
                .to_string();
            respond(
                "text/html; charset=utf-8",
                full(format!(
                    "<html><body><h1>{name}</h1><p>encoding={encoding}</p></body></html>"
                )),
            )
        }
        "/text" => respond("text/plain", full(name)),
        "/gzip" => {
            let mut response = respond(
                "text/html",
                full(Bytes::from_static(b"\x1f\x8bnot really gzip")),
            );
            response
                .headers_mut()
                .insert("content-encoding", "gzip".parse().unwrap());
            response
        }
        "/slow" => {
            tokio::time::sleep(Duration::from_millis(300)).await;
            respond("text/plain", full(name))
        }
        "/headers" => {
            let text: String = req
                .headers()
                .iter()
                .map(|(k, v)| format!("{k}: {}\n", v.to_str().unwrap_or("?")))
                .collect();
            respond("text/plain", full(text))
        }
        "/upload" => {
            let mut body = req.into_body();
            let mut total = 0usize;
            while let Some(Ok(frame)) = body.frame().await {
                if let Ok(data) = frame.into_data() {
                    total += data.len();
                }
            }
            respond("text/plain", full(total.to_string()))
        }
        "/sse" => {
            let (mut tx, body) = http_body_util::channel::Channel::<Bytes, hyper::Error>::new(4);
            tokio::spawn(async move {
                let _ = tx
                    .send(Frame::data(Bytes::from(format!("data: {name}-1\n\n"))))
                    .await;
                tokio::time::sleep(Duration::from_millis(100)).await;
                let _ = tx
                    .send(Frame::data(Bytes::from(format!("data: {name}-2\n\n"))))
                    .await;
                // Hold the stream open until the client goes away.
                std::future::pending::<()>().await;
            });
            respond("text/event-stream", body.boxed_unsync())
        }
        _ => Response::builder()
            .status(StatusCode::NOT_FOUND)
            .body(full("not found"))
            .unwrap(),
    })
}
