//! `--json`: one object per line on stdout, for tools and for our integration tests.
//!
//! Every line carries `v` ([`SCHEMA_VERSION`]), `ts` (milliseconds since the Unix epoch) and
//! `event` (the kebab-case variant name of [`Event`]); the other fields are the variant's, in
//! snake_case. Targets' output lines become `output` events with `--json-output`.

use std::time::{SystemTime, UNIX_EPOCH};

use schemars::JsonSchema;
use serde::Serialize;

use crate::event::{Event, SCHEMA_VERSION};
use crate::process::Stream;

/// One engine event.
#[derive(Serialize, JsonSchema)]
struct Envelope<'a> {
    /// The stream's schema version: bumped when a field is removed or changes meaning.
    v: u32,
    /// Milliseconds since the Unix epoch.
    ts: u128,
    #[serde(flatten)]
    event: &'a Event,
}

/// One line of a target's output (with `--json-output`).
#[derive(Serialize, JsonSchema)]
struct OutputLine<'a> {
    v: u32,
    ts: u128,
    event: OutputTag,
    target: &'a str,
    stream: StreamName,
    /// The line without its terminator; bytes that are not UTF-8 become U+FFFD.
    line: String,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum OutputTag {
    Output,
}

#[derive(Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
enum StreamName {
    Stdout,
    Stderr,
}

/// A line of `--json` output: an engine event or a target's output line.
#[derive(JsonSchema)]
#[allow(dead_code)] // Only its schema is used: it describes what the two writers emit.
#[serde(untagged)]
enum StreamLine<'a> {
    Event(Envelope<'a>),
    Output(OutputLine<'a>),
}

/// The JSON Schema every `--json` line satisfies (`cargo hot schema events`).
pub fn stream_schema() -> schemars::Schema {
    schemars::schema_for!(StreamLine<'static>)
}

/// The JSON line for `event`, stamped with `ts`.
pub fn event_line(event: &Event, ts: u128) -> Option<String> {
    let envelope = Envelope {
        v: SCHEMA_VERSION,
        ts,
        event,
    };
    match serde_json::to_string(&envelope) {
        Ok(line) => Some(line),
        Err(error) => {
            // A consumer waits for this event; say on stderr that it will not come.
            eprintln!("cargo-hot: error: could not write a JSON event ({error}): {event:?}");
            None
        }
    }
}

/// The `output` event for one line of a target's output.
pub fn output_line(target: &str, stream: Stream, line: &[u8], ts: u128) -> Option<String> {
    serde_json::to_string(&OutputLine {
        v: SCHEMA_VERSION,
        ts,
        event: OutputTag::Output,
        target,
        stream: match stream {
            Stream::Stdout => StreamName::Stdout,
            Stream::Stderr => StreamName::Stderr,
        },
        line: String::from_utf8_lossy(line).into_owned(),
    })
    .ok()
}

pub fn now_millis() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;

    #[test]
    fn envelope_carries_version_timestamp_and_kind() {
        let event = Event::Started {
            target: "api".into(),
            pid: 42,
            executable: PathBuf::from("/t/hot/api-00"),
        };
        let json: serde_json::Value =
            serde_json::from_str(&event_line(&event, 7).unwrap()).unwrap();
        assert_eq!(json["v"], SCHEMA_VERSION);
        assert_eq!(json["ts"], 7);
        assert_eq!(json["event"], "started");
        assert_eq!(json["target"], "api");
        assert_eq!(json["pid"], 42);
    }

    #[test]
    fn output_lines_are_events_too() {
        let line = output_line("api", Stream::Stderr, b"bad \xff byte", 9).unwrap();
        let json: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(json["event"], "output");
        assert_eq!(json["v"], SCHEMA_VERSION);
        assert_eq!(json["stream"], "stderr");
        assert_eq!(json["line"], "bad \u{fffd} byte");
    }
}
