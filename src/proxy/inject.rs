//! Live-reload injection: the script tag goes into the app's HTML pages on their way out.
//!
//! Only uncompressed `text/html` bodies are touched (the proxy asks for identity encoding on
//! page loads, but an app may compress anyway); the body is read whole, which pages are small
//! enough for, up to [`MAX_PAGE`]; a bigger one passes through untouched.

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Frame;
use hyper::header::{HeaderMap, HeaderValue, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::{Method, Response, StatusCode};

use super::{Body, BoxError, RELOAD_SCRIPT_TAG};

/// The largest page that gets the script.
pub const MAX_PAGE: usize = 8 << 20;

/// Whether the response is a page to inject into, or why not (`Err(reason)`, for `-v`);
/// `Ok(false)` for responses that are no page at all.
pub fn decide(method: &Method, status: StatusCode, headers: &HeaderMap) -> Result<bool, String> {
    let html = headers
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| {
            t.split(';')
                .next()
                .is_some_and(|m| m.trim().eq_ignore_ascii_case("text/html"))
        });
    if !html
        || method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(false);
    }
    match headers
        .get(CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?"))
    {
        None => Ok(true),
        Some(e) if e.trim().eq_ignore_ascii_case("identity") => Ok(true),
        Some(encoding) => Err(format!(
            "the page is {encoding}-compressed although identity encoding was asked for"
        )),
    }
}

/// `html` with the script tag before the last `</body>` (any case), or at the end.
pub fn inject(html: &[u8]) -> Vec<u8> {
    let tag = RELOAD_SCRIPT_TAG.as_bytes();
    let at = html
        .windows(7)
        .rposition(|w| w.eq_ignore_ascii_case(b"</body>"))
        .unwrap_or(html.len());
    let mut out = Vec::with_capacity(html.len() + tag.len());
    out.extend_from_slice(&html[..at]);
    out.extend_from_slice(tag);
    out.extend_from_slice(&html[at..]);
    out
}

/// Reads the page and returns it with the script injected and `Content-Length` fixed. A page
/// over [`MAX_PAGE`] goes out as it came (what was read, then the rest of the stream).
pub async fn into_injected(response: Response<Body>) -> Result<Response<Body>, String> {
    let (mut parts, mut body) = response.into_parts();
    let mut page = BytesMut::new();
    let mut trailers = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| format!("the app's page broke off: {e}"))?;
        match frame.into_data() {
            Ok(data) => page.extend_from_slice(&data),
            Err(frame) => trailers = frame.into_trailers().ok(),
        }
        if page.len() > MAX_PAGE {
            let head = Bytes::from(page);
            let rest = http_body_util::Full::new(head)
                .map_err(|never| -> BoxError { match never {} })
                .boxed_unsync();
            let chained = Chain {
                first: Some(rest),
                second: body,
            };
            return Ok(Response::from_parts(parts, chained.boxed_unsync()));
        }
    }
    let injected = Bytes::from(inject(&page));
    parts.headers.remove(CONTENT_LENGTH);
    parts
        .headers
        .insert(CONTENT_LENGTH, HeaderValue::from(injected.len()));
    let body = http_body_util::Full::new(injected).map_err(|never| -> BoxError { match never {} });
    let body = match trailers {
        Some(trailers) => body
            .with_trailers(async move { Some(Ok(trailers)) })
            .boxed_unsync(),
        None => body.boxed_unsync(),
    };
    Ok(Response::from_parts(parts, body))
}

/// One body, then another.
struct Chain {
    first: Option<Body>,
    second: Body,
}

impl hyper::body::Body for Chain {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        use std::task::Poll;
        if let Some(first) = self.first.as_mut() {
            match std::pin::Pin::new(first).poll_frame(cx) {
                Poll::Ready(None) => self.first = None,
                other => return other,
            }
        }
        std::pin::Pin::new(&mut self.second).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.first.is_none() && self.second.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn html_headers(extra: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        );
        for (name, value) in extra {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn the_tag_goes_before_the_last_closing_body_or_at_the_end() {
        let tag = RELOAD_SCRIPT_TAG;
        assert_eq!(
            String::from_utf8(inject(b"<html><BODY>hi</Body></html>")).unwrap(),
            format!("<html><BODY>hi{tag}</Body></html>")
        );
        assert_eq!(
            String::from_utf8(inject(b"<p>fragment</p>")).unwrap(),
            format!("<p>fragment</p>{tag}")
        );
        assert_eq!(
            String::from_utf8(inject(b"<pre></body></pre></body>")).unwrap(),
            format!("<pre></body></pre>{tag}</body>")
        );
    }

    #[test]
    fn only_uncompressed_pages_with_a_body_are_touched() {
        let get = Method::GET;
        let ok = StatusCode::OK;
        assert_eq!(decide(&get, ok, &html_headers(&[])), Ok(true));
        assert_eq!(
            decide(&get, ok, &html_headers(&[("content-encoding", "identity")])),
            Ok(true)
        );
        assert!(
            decide(&get, ok, &html_headers(&[("content-encoding", "gzip")]))
                .unwrap_err()
                .contains("gzip")
        );
        assert_eq!(decide(&Method::HEAD, ok, &html_headers(&[])), Ok(false));
        assert_eq!(
            decide(&get, StatusCode::NOT_MODIFIED, &html_headers(&[])),
            Ok(false)
        );
        let mut json = HeaderMap::new();
        json.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        assert_eq!(decide(&get, ok, &json), Ok(false));
    }
}
