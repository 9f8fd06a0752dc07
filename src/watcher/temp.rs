//! Recognising the scratch files editors and atomic-save helpers leave next
//! to real sources, so that a save reports the real name and nothing else.

use std::path::Path;

/// True for names that editors, IDEs and atomic-save helpers create and
/// delete around a save: vim swap/backup/probe files, emacs autosave and lock
/// files, JetBrains safe-write files, `*.tmp` / `*.tmp.*` atomic-save files,
/// tempfile-style `.tmpXXXXXX` files, gedit's `.goutputstream-*`, kate swap
/// files and `.DS_Store`.
///
/// Only the final component is looked at: a real file inside a directory
/// called `tmp` or `temp` is still a real file.
pub fn is_editor_temp(path: &Path) -> bool {
    let Some(name) = path.file_name() else {
        return false;
    };
    // Editors only generate ASCII decorations, so a lossy view is enough to
    // recognise them and never misreads a non-UTF-8 name as one of them.
    let name = name.to_string_lossy();
    let name = name.as_ref();
    let lower = name.to_ascii_lowercase();

    name.ends_with('~')
        // vim writes this probe file to test whether the directory is writable.
        || name == "4913"
        || name == ".DS_Store"
        || is_vim_swap(name)
        || (name.len() >= 2 && name.starts_with('#') && name.ends_with('#'))
        || name.starts_with(".#")
        || name.ends_with("___jb_tmp___")
        || name.ends_with("___jb_old___")
        || name.ends_with(".kate-swp")
        || name.starts_with(".goutputstream-")
        || lower.ends_with(".tmp")
        // `foo.rs.tmp.1234.5678`: something must precede `.tmp.` so that a
        // hidden `.tmp.rs` or a plain `tmp.rs` stays a real file.
        || lower.find(".tmp.").is_some_and(|at| at > 0)
        || is_tempfile_crate_name(name)
}

/// vim's swap files: `.swp`, then `.swo`, `.swn`, … when the first is taken,
/// plus `.swx`, which vim creates briefly to probe the file system.
fn is_vim_swap(name: &str) -> bool {
    if name.ends_with(".swp") || name.ends_with(".swo") || name.ends_with(".swx") {
        return true;
    }
    // The rarer fall-back letters only count for hidden names, which is how
    // vim names swap files next to the edited file (`.main.rs.swn`).
    let bytes = name.as_bytes();
    name.starts_with('.')
        && bytes.len() > 4
        && bytes[..bytes.len() - 1].ends_with(b".sw")
        && matches!(bytes[bytes.len() - 1], b'a'..=b'p')
}

/// The `tempfile` crate (used by many Rust tools for atomic writes) names its
/// files `.tmp` followed by random alphanumerics, e.g. `.tmpA1b2C3`.
fn is_tempfile_crate_name(name: &str) -> bool {
    name.strip_prefix(".tmp").is_some_and(|rest| {
        (4..=16).contains(&rest.len()) && rest.bytes().all(|b| b.is_ascii_alphanumeric())
    })
}

#[cfg(test)]
mod tests {
    use super::is_editor_temp;
    use std::path::Path;

    #[test]
    fn editor_temp_names() {
        let temps = [
            "/w/src/.main.rs.swp",
            "/w/src/.main.rs.swo",
            "/w/src/.main.rs.swx",
            "/w/src/.main.rs.swn",
            "/w/src/main.rs.swp",
            "/w/src/main.rs~",
            "/w/src/4913",
            "/w/src/#main.rs#",
            "/w/src/.#main.rs",
            "/w/src/main.rs___jb_tmp___",
            "/w/src/main.rs___jb_old___",
            "/w/src/main.rs.tmp",
            "/w/src/foo.tmp",
            "/w/src/FOO.TMP",
            "/w/src/main.rs.tmp.1234.5678",
            "/w/src/.tmpA1b2C3",
            "/w/src/.DS_Store",
            "/w/src/main.rs.kate-swp",
            "/w/src/.goutputstream-ABC123",
            "/w/src/.tmp",
        ];
        for t in temps {
            assert!(is_editor_temp(Path::new(t)), "{t} should be a temp file");
        }
        let real = [
            "/w/src/main.rs",
            "/w/src/tmp.rs",
            "/w/src/.tmp.rs",
            "/w/src/temp",
            "/w/src/temp/",
            "/w/tmp/lib.rs",
            "/w/src/4914",
            "/w/src/49130",
            "/w/src/foo.rs",
            "/w/src/#notes",
            "/w/src/.gitignore",
            "/w/src/.sql",
            "/w/src/.x.sql",
            "/w/src/swp.rs",
            "/w/src/main.rs.bak",
            "/w/.cargo/config.toml",
            "/w/src/tmpfile.rs",
            "/w/src/.tmpl",
        ];
        for r in real {
            assert!(
                !is_editor_temp(Path::new(r)),
                "{r} is a real file and must be reported"
            );
        }
    }

    #[cfg(unix)]
    #[test]
    fn non_utf8_names_do_not_panic() {
        use std::ffi::OsStr;
        use std::os::unix::ffi::OsStrExt;
        let real = Path::new(OsStr::from_bytes(b"/w/src/caf\xe9.rs"));
        assert!(!is_editor_temp(real));
        let swap = Path::new(OsStr::from_bytes(b"/w/src/.caf\xe9.rs.swp"));
        assert!(is_editor_temp(swap));
    }
}
