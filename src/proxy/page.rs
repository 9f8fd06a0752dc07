//! The answers cargo hot gives itself instead of the app's: the build error (502) and the
//! timeout while no run became ready (503). Browsers get HTML with cargo's colours and the
//! reload script (so the page recovers by itself on the next good build); anything else gets
//! plain text without escape codes.

use std::fmt::Write as _;

use hyper::header::{HeaderMap, HeaderValue, ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use hyper::{Response, StatusCode};

use super::{full, Body, RELOAD_SCRIPT_TAG};

/// Whether the client asked for HTML, as browsers do for a page load.
pub fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("text/html"))
}

pub fn build_failed(rendered: &str, html: bool) -> Response<Body> {
    let title = "cargo hot: the build failed";
    let detail =
        "No run of the app exists yet; the page reloads by itself after the next good build.";
    answer(StatusCode::BAD_GATEWAY, title, detail, rendered, html)
}

pub fn not_ready(target: &str, waited_secs: u64, html: bool) -> Response<Body> {
    let title = "cargo hot: the app is not ready";
    let detail = format!(
        "No run of `{target}` became ready within {waited_secs} s (--proxy-wait). \
         The terminal running cargo hot says why."
    );
    answer(StatusCode::SERVICE_UNAVAILABLE, title, &detail, "", html)
}

pub fn bad_gateway(target: &str, error: &str) -> Response<Body> {
    let detail = format!("cargo hot could not forward the request to `{target}`: {error}");
    answer(
        StatusCode::BAD_GATEWAY,
        "cargo hot: forwarding failed",
        &detail,
        "",
        false,
    )
}

fn answer(status: StatusCode, title: &str, detail: &str, body: &str, html: bool) -> Response<Body> {
    let (text, content_type) = if html {
        let mut page = String::new();
        let _ = write!(
            page,
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><title>{title}</title></head>\
             <body style=\"font-family:sans-serif;margin:2em\"><h1>{title}</h1><p>{detail}</p>\
             <pre style=\"background:#111;color:#eee;padding:1em;overflow:auto\">{pre}</pre>\
             {RELOAD_SCRIPT_TAG}</body></html>\n",
            title = escape(title),
            detail = escape(detail),
            pre = ansi_to_html(body),
        );
        (page, "text/html; charset=utf-8")
    } else {
        let mut text = format!("{title}\n{detail}\n");
        if !body.is_empty() {
            text.push('\n');
            text.push_str(&strip_ansi(body));
            text.push('\n');
        }
        (text, "text/plain; charset=utf-8")
    };
    let mut response = Response::new(full(text));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The SGR sequences of `text` (the ones cargo uses: bold, underline, the 16 colours and
/// `38;5;N`) as `<span>`s around the text they apply to; every other escape is dropped.
pub fn ansi_to_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut style = Style::default();
    let mut rest = text;
    loop {
        let at = rest.find('\x1b').unwrap_or(rest.len());
        style.wrap(&rest[..at], &mut out);
        if at == rest.len() {
            return out;
        }
        let (params, after) = split_escape(&rest[at..]);
        if let Some(params) = params {
            style.apply(params);
        }
        rest = after;
    }
}

#[derive(Default)]
struct Style {
    bold: bool,
    underline: bool,
    color: Option<&'static str>,
}

impl Style {
    fn apply(&mut self, params: &str) {
        let codes: Vec<u16> = params.split(';').map(|p| p.parse().unwrap_or(0)).collect();
        let mut i = 0;
        while i < codes.len() {
            match codes[i] {
                0 => *self = Style::default(),
                1 => self.bold = true,
                4 => self.underline = true,
                22 => self.bold = false,
                24 => self.underline = false,
                39 => self.color = None,
                c @ 30..=37 => self.color = Some(COLOURS[usize::from(c - 30)]),
                c @ 90..=97 => self.color = Some(COLOURS[usize::from(c - 90 + 8)]),
                38 if codes.get(i + 1) == Some(&5) => {
                    self.color = codes
                        .get(i + 2)
                        .and_then(|&n| COLOURS.get(usize::from(n)))
                        .copied();
                    i += 2;
                }
                _ => {}
            }
            i += 1;
        }
    }

    fn wrap(&self, text: &str, out: &mut String) {
        if text.is_empty() {
            return;
        }
        let mut css = String::new();
        if self.bold {
            css.push_str("font-weight:bold;");
        }
        if self.underline {
            css.push_str("text-decoration:underline;");
        }
        if let Some(color) = self.color {
            let _ = write!(css, "color:{color};");
        }
        if css.is_empty() {
            out.push_str(&escape(text));
        } else {
            let _ = write!(out, "<span style=\"{css}\">{}</span>", escape(text));
        }
    }
}

/// The 16 terminal colours, normal then bright, readable on a dark background.
const COLOURS: [&str; 16] = [
    "#555", "#e05252", "#5fb85f", "#d6b84b", "#5b8fe0", "#c678dd", "#4fb6c4", "#ddd", "#888",
    "#ff6b6b", "#7ee07e", "#ffd75f", "#7aa7ff", "#e08aff", "#6fe0ee", "#fff",
];

pub fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find('\x1b') {
        out.push_str(&rest[..at]);
        rest = split_escape(&rest[at..]).1;
    }
    out.push_str(rest);
    out
}

/// Splits one escape sequence off the front of `text` (which starts with ESC): its SGR
/// parameters when it is `ESC [ … m`, and the text after it.
fn split_escape(text: &str) -> (Option<&str>, &str) {
    let body = &text[1..];
    let Some(csi) = body.strip_prefix('[') else {
        // A character-set designation (`ESC ( B`) or a two-byte escape: drop it whole.
        let mut chars = body.chars();
        let skip = match chars.next() {
            Some(c @ ('(' | ')' | '*' | '+')) => {
                c.len_utf8() + chars.next().map_or(0, char::len_utf8)
            }
            Some(c) => c.len_utf8(),
            None => 0,
        };
        return (None, &body[skip..]);
    };
    match csi.find(|c: char| ('\x40'..='\x7e').contains(&c)) {
        Some(end) if csi.as_bytes()[end] == b'm' => (Some(&csi[..end]), &csi[end + 1..]),
        Some(end) => (None, &csi[end + 1..]),
        None => (None, ""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_colours_become_spans_and_text_is_escaped() {
        let rendered = "\x1b[0m\x1b[1m\x1b[38;5;9merror[E0308]\x1b[0m\x1b[0m\x1b[1m: mismatched <types>\x1b[0m";
        assert_eq!(
            ansi_to_html(rendered),
            "<span style=\"font-weight:bold;color:#ff6b6b;\">error[E0308]</span>\
             <span style=\"font-weight:bold;\">: mismatched &lt;types&gt;</span>"
        );
        assert_eq!(
            ansi_to_html("\x1b[1;31mbad\x1b[0m & ok"),
            "<span style=\"font-weight:bold;color:#e05252;\">bad</span> &amp; ok"
        );
    }

    #[test]
    fn plain_text_loses_every_escape() {
        assert_eq!(
            strip_ansi("\x1b[1m\x1b[31merror\x1b[0m: x\x1b[K\x1b(B"),
            "error: x"
        );
        assert_eq!(strip_ansi("unterminated \x1b[12"), "unterminated ");
    }

    #[test]
    fn browsers_get_html_and_others_text() {
        let mut headers = HeaderMap::new();
        assert!(!wants_html(&headers));
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml,*/*;q=0.8"),
        );
        assert!(wants_html(&headers));
    }
}
