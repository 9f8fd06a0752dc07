//! Paths in JSON, whatever bytes they hold.
//!
//! serde refuses to serialize a path that is not valid UTF-8, and a file named in Latin-1 on
//! a Linux disk is not. Every path we put in JSON goes through these helpers instead
//! (`#[serde(serialize_with = …)]`): the invalid bytes become U+FFFD, as `Path::display`
//! shows them, so the event still reaches the tool that waits for it.

use std::path::{Path, PathBuf};

use serde::ser::SerializeSeq;
use serde::Serializer;

pub fn path<S: Serializer>(path: &Path, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&path.to_string_lossy())
}

pub fn paths<S: Serializer>(paths: &[PathBuf], serializer: S) -> Result<S::Ok, S::Error> {
    let mut seq = serializer.serialize_seq(Some(paths.len()))?;
    for path in paths {
        seq.serialize_element(&path.to_string_lossy())?;
    }
    seq.end()
}

#[cfg(test)]
mod tests {
    /// A path that is not valid Unicode: a stray Latin-1 byte on unix, an unpaired surrogate
    /// on Windows (its paths are UTF-16).
    fn odd_path() -> std::path::PathBuf {
        #[cfg(unix)]
        {
            use std::os::unix::ffi::OsStrExt;
            std::ffi::OsStr::from_bytes(b"docs/caf\xe9.txt").into()
        }
        #[cfg(windows)]
        {
            use std::os::windows::ffi::OsStringExt;
            let mut wide: Vec<u16> = "docs/caf".encode_utf16().collect();
            wide.push(0xD800);
            wide.extend(".txt".encode_utf16());
            std::ffi::OsString::from_wide(&wide).into()
        }
    }

    #[derive(serde::Serialize)]
    struct Both {
        #[serde(serialize_with = "super::path")]
        one: std::path::PathBuf,
        #[serde(serialize_with = "super::paths")]
        many: Vec<std::path::PathBuf>,
    }

    #[test]
    fn invalid_utf8_becomes_replacement_characters() {
        let odd = odd_path();
        let json = serde_json::to_string(&Both {
            one: odd.clone(),
            many: vec![odd, "src/lib.rs".into()],
        })
        .unwrap();
        assert_eq!(
            json,
            r#"{"one":"docs/caf�.txt","many":["docs/caf�.txt","src/lib.rs"]}"#
        );
    }
}
