//! Staging: giving a fresh executable a name of its own under `target/hot/` so cargo may
//! replace its output while the old process still runs, and telling a real change from a
//! rebuild that produced the same bytes, both without reading the executable on the hot path.
//!
//! A staged copy costs no bytes where the platform allows it, in this order:
//! - a reflink (FICLONE on Linux, clonefile on macOS): a new inode sharing the blocks, safe
//!   whatever later writes to cargo's output; only some file systems have it (btrfs, XFS,
//!   APFS), and elsewhere it fails at once;
//! - a hardlink (Unix): the same inode under a second name. Safe because cargo and the
//!   linkers replace an output with a new inode rather than write into the old one (rustc's
//!   linkers, bfd, gold, lld and mold all do; `tests/integration/staging.rs` proves it for
//!   the default linker, bfd and, when installed, mold);
//! - a copy, the last resort, and always on Windows, where a running `.exe` is locked.
//!
//! The staged name comes from the output's identity (device, inode, size, mtime), not from
//! its content, and [`same_as_running`] answers "is this build's executable the one already
//! running?" from cargo's `fresh` flag and that identity first, then sizes, and reads bytes
//! only for two files of equal size, stopping at the first difference.

use std::fs;
use std::hash::Hasher;
use std::io::Read;
use std::path::Path;
use std::time::SystemTime;

use anyhow::{Context, Result};

use super::Artifact;

#[cfg(target_os = "linux")]
#[path = "stage/linux.rs"]
mod platform;
#[cfg(target_os = "macos")]
#[path = "stage/macos.rs"]
mod platform;
#[cfg(not(any(target_os = "linux", target_os = "macos")))]
#[path = "stage/other.rs"]
mod platform;

/// What a file is, as far as cheap metadata tells: two reads of one path with the same
/// identity saw the same file, unchanged (nothing rewrites an output in place keeping its
/// size, mtime and inode).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Identity {
    /// Device and inode on Unix; 0 where the platform has no cheap equivalent.
    pub file: u128,
    pub len: u64,
    /// Nanoseconds since the Unix epoch (0 when the file system has no mtime).
    pub modified: u128,
}

impl Identity {
    pub fn of(path: &Path) -> Result<Identity> {
        let meta =
            fs::metadata(path).with_context(|| format!("failed to stat {}", path.display()))?;
        Ok(Identity::from_metadata(&meta))
    }

    fn from_metadata(meta: &fs::Metadata) -> Identity {
        Identity {
            file: platform::file_id(meta),
            len: meta.len(),
            modified: meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_nanos()),
        }
    }

    /// A stable number for the staged name: SipHash with fixed keys over the identity.
    pub fn id(&self) -> u64 {
        #[allow(deprecated)]
        let mut hasher = std::hash::SipHasher::new_with_keys(0x6361_7267_6f2d, 0x0068_6f74);
        hasher.write_u128(self.file);
        hasher.write_u64(self.len);
        hasher.write_u128(self.modified);
        hasher.finish()
    }
}

/// How a staged copy was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Reflink,
    Hardlink,
    Copy,
    /// The same output was staged before and that copy is still there.
    Reused,
}

/// Stages `artifact`'s executable as `hot_dir/NAME-ID` (ID from the output's identity) and
/// returns it with the method used. Staging the same unchanged output again reuses the copy.
pub fn stage(artifact: &Artifact, hot_dir: &Path, name: &str) -> Result<(super::Staged, Method)> {
    let source = &artifact.executable;
    let identity = Identity::of(source)?;
    fs::create_dir_all(hot_dir)
        .with_context(|| format!("failed to create staging directory {}", hot_dir.display()))?;
    let id = identity.id();
    // Windows runs nothing without its extension.
    let exe = std::env::consts::EXE_SUFFIX;
    let path = hot_dir.join(format!("{name}-{id:016x}{exe}"));
    let staged = |method| {
        let staged = super::Staged {
            path: path.clone(),
            id,
            source: identity,
        };
        Ok((staged, method))
    };
    if path.exists() {
        return staged(Method::Reused);
    }
    // Reflink and copy write a new file: under a temporary name first, so a crash never
    // leaves a half-written file under the final name that a later run would trust.
    let partial = hot_dir.join(format!(".{name}-{id:016x}.partial"));
    let _ = fs::remove_file(&partial);
    if platform::reflink(source, &partial).is_ok() {
        rename(&partial, &path)?;
        return staged(Method::Reflink);
    }
    let _ = fs::remove_file(&partial);
    if platform::HARDLINKS && fs::hard_link(source, &path).is_ok() {
        return staged(Method::Hardlink);
    }
    fs::copy(source, &partial).with_context(|| {
        format!(
            "failed to copy {} to {}",
            source.display(),
            partial.display()
        )
    })?;
    rename(&partial, &path)?;
    staged(Method::Copy)
}

fn rename(partial: &Path, path: &Path) -> Result<()> {
    fs::rename(partial, path)
        .with_context(|| format!("failed to move staged executable to {}", path.display()))
}

/// Why [`same_as_running`] answered as it did: for the bench and the tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Cargo found it fresh and the output is the very file that was staged.
    Fresh,
    /// Cargo rewrote it, but the output is still the file that was staged (hardlinked: the
    /// same inode) — only possible when nothing was written.
    SameFile,
    /// Sizes differ: a real change, known from metadata alone.
    SizeDiffers,
    /// Same size; the bytes differ at this offset.
    BytesDiffer(u64),
    /// Same size and every byte equal: a byte-identical rebuild.
    BytesEqual,
}

impl Verdict {
    pub fn same(self) -> bool {
        matches!(
            self,
            Verdict::Fresh | Verdict::SameFile | Verdict::BytesEqual
        )
    }
}

/// Is `artifact` the executable `running` was staged from (or byte-identical to it)?
pub fn same_as_running(artifact: &Artifact, running: &super::Staged) -> Result<bool> {
    compare(artifact, running).map(Verdict::same)
}

/// [`same_as_running`] with the reason. Cheapest first: cargo's `fresh` flag and one stat,
/// then sizes, then the bytes of both files up to the first difference (a real change
/// differs in the first block: the linker's build id and the headers sit at the start).
pub fn compare(artifact: &Artifact, running: &super::Staged) -> Result<Verdict> {
    let now = Identity::of(&artifact.executable)?;
    // `fresh` alone is not enough: a `cargo build` outside cargo hot may have replaced the
    // output since it was staged, and this build then finds it fresh.
    if now == running.source {
        return Ok(if artifact.fresh {
            Verdict::Fresh
        } else {
            Verdict::SameFile
        });
    }
    let staged_len = fs::metadata(&running.path)
        .with_context(|| format!("failed to stat {}", running.path.display()))?
        .len();
    if staged_len != now.len {
        return Ok(Verdict::SizeDiffers);
    }
    Ok(
        match first_difference(&artifact.executable, &running.path)? {
            Some(offset) => Verdict::BytesDiffer(offset),
            None => Verdict::BytesEqual,
        },
    )
}

/// The offset of the first byte where two files differ (or where one ends), None if they are
/// equal. Starts with a small block, as a difference is usually within the first kilobytes.
pub fn first_difference(a: &Path, b: &Path) -> Result<Option<u64>> {
    let open =
        |p: &Path| fs::File::open(p).with_context(|| format!("failed to open {}", p.display()));
    let (mut fa, mut fb) = (open(a)?, open(b)?);
    let (mut ba, mut bb) = (vec![0u8; 1 << 20], vec![0u8; 1 << 20]);
    let mut offset = 0u64;
    let mut block = 16 * 1024;
    loop {
        let na = read_full(&mut fa, &mut ba[..block])
            .with_context(|| format!("failed to read {}", a.display()))?;
        let nb = read_full(&mut fb, &mut bb[..block])
            .with_context(|| format!("failed to read {}", b.display()))?;
        let n = na.min(nb);
        // Slice equality is memcmp; the byte-by-byte search runs only in the block that
        // differs.
        if ba[..n] != bb[..n] {
            let i = ba[..n].iter().zip(&bb[..n]).position(|(x, y)| x != y);
            return Ok(Some(offset + i.unwrap_or(n) as u64));
        }
        if na != nb {
            return Ok(Some(offset + na.min(nb) as u64));
        }
        if na == 0 {
            return Ok(None);
        }
        offset += na as u64;
        block = (block * 4).min(ba.len());
    }
}

/// Fills `buf` unless the file ends first; how many bytes were read.
fn read_full(file: &mut fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// The staged path of an output with this identity, for tests that check reuse.
#[cfg(test)]
fn staged_path(hot_dir: &Path, name: &str, identity: &Identity) -> std::path::PathBuf {
    hot_dir.join(format!(
        "{name}-{:016x}{}",
        identity.id(),
        std::env::consts::EXE_SUFFIX
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn artifact(path: &Path, fresh: bool) -> Artifact {
        Artifact {
            executable: path.to_path_buf(),
            fresh,
        }
    }

    /// Replaces `path` with a new file (a new inode), as cargo and the linkers do.
    fn relink(path: &Path, bytes: &[u8]) {
        let tmp = path.with_extension("tmp");
        fs::write(&tmp, bytes).unwrap();
        fs::rename(&tmp, path).unwrap();
    }

    #[test]
    fn staging_keeps_the_old_bytes_when_the_output_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("api");
        fs::write(&exe, b"version one").unwrap();
        let hot = dir.path().join("hot");
        let (first, method) = stage(&artifact(&exe, false), &hot, "api").unwrap();
        assert_ne!(
            method,
            Method::Copy,
            "the same file system allows a link or a clone"
        );
        assert_eq!(
            first.path,
            staged_path(&hot, "api", &Identity::of(&exe).unwrap())
        );
        relink(&exe, b"version two");
        let (second, _) = stage(&artifact(&exe, false), &hot, "api").unwrap();
        assert_ne!(first.path, second.path);
        assert_eq!(fs::read(&first.path).unwrap(), b"version one");
        assert_eq!(fs::read(&second.path).unwrap(), b"version two");
    }

    #[test]
    fn staging_an_unchanged_output_again_reuses_its_copy() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("api");
        fs::write(&exe, b"bytes").unwrap();
        let (first, _) = stage(&artifact(&exe, false), dir.path(), "api").unwrap();
        let (again, method) = stage(&artifact(&exe, true), dir.path(), "api").unwrap();
        assert_eq!(method, Method::Reused);
        assert_eq!(first, again);
        let copies = fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(copies, 2, "the output and one staged copy: {copies}");
    }

    #[test]
    fn a_fresh_unchanged_output_is_the_running_one_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("api");
        fs::write(&exe, b"bytes").unwrap();
        let (running, _) = stage(&artifact(&exe, false), dir.path(), "api").unwrap();
        assert_eq!(
            compare(&artifact(&exe, true), &running).unwrap(),
            Verdict::Fresh
        );
    }

    #[test]
    fn fresh_is_not_trusted_when_the_output_was_replaced_since_staging() {
        // A `cargo build` outside cargo hot rebuilt it; this build then finds it fresh.
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("api");
        fs::write(&exe, b"version one").unwrap();
        let (running, _) = stage(&artifact(&exe, false), dir.path(), "api").unwrap();
        relink(&exe, b"version 2!!");
        let verdict = compare(&artifact(&exe, true), &running).unwrap();
        assert_eq!(verdict, Verdict::BytesDiffer(8));
        assert!(!verdict.same());
    }

    #[test]
    fn sizes_tell_a_change_before_any_byte_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("api");
        fs::write(&exe, b"short").unwrap();
        let (running, _) = stage(&artifact(&exe, false), dir.path(), "api").unwrap();
        relink(&exe, b"much longer");
        assert_eq!(
            compare(&artifact(&exe, false), &running).unwrap(),
            Verdict::SizeDiffers
        );
    }

    #[test]
    fn a_byte_identical_rebuild_is_the_same() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("api");
        // Several blocks, so the growing block size is exercised.
        let bytes: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
        fs::write(&exe, &bytes).unwrap();
        let (running, _) = stage(&artifact(&exe, false), dir.path(), "api").unwrap();
        relink(&exe, &bytes);
        let verdict = compare(&artifact(&exe, false), &running).unwrap();
        assert_eq!(verdict, Verdict::BytesEqual);
        assert!(same_as_running(&artifact(&exe, false), &running).unwrap());
    }

    #[test]
    fn first_difference_finds_late_and_trailing_differences() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a"), dir.path().join("b"));
        let bytes: Vec<u8> = (0..2_500_000u32).map(|i| (i % 253) as u8).collect();
        fs::write(&a, &bytes).unwrap();
        let mut late = bytes.clone();
        late[2_400_001] ^= 1;
        fs::write(&b, &late).unwrap();
        assert_eq!(first_difference(&a, &b).unwrap(), Some(2_400_001));
        fs::write(&b, &bytes[..1_000_000]).unwrap();
        assert_eq!(first_difference(&a, &b).unwrap(), Some(1_000_000));
        fs::write(&b, &bytes).unwrap();
        assert_eq!(first_difference(&a, &b).unwrap(), None);
    }

    #[test]
    fn a_missing_output_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("gone");
        let error = stage(&artifact(&exe, false), dir.path(), "gone").unwrap_err();
        assert!(format!("{error:#}").contains("gone"), "{error:#}");
    }
}
