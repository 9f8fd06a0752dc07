//! File systems where native file events never arrive: a Docker bind mount from macOS or
//! Windows (virtiofs, 9p), WSL's Windows drives under `/mnt/*` (drvfs, 9p underneath), and
//! network shares (NFS, CIFS/SMB). The kernel there learns of a change only when it is made
//! through this machine, so an editor on the host goes unnoticed; polling is the only way.
//!
//! Detected with `statfs` (the file system's magic number); virtiofs shares FUSE's magic with
//! every FUSE file system, and WSL1's drvfs has none of its own, so for those two the mount
//! table names the type.

use std::path::Path;

/// Test hook: `CARGO_HOT_TEST_FS_TYPE=NAME` makes every root look as if it were on a file
/// system called NAME where events never arrive, to exercise automatic polling end to end.
pub(super) const TEST_FS_TYPE_ENV: &str = "CARGO_HOT_TEST_FS_TYPE";

/// The name of the file system under `path` when native events never arrive there.
pub(super) fn eventless(path: &Path) -> Option<String> {
    if let Ok(name) = std::env::var(TEST_FS_TYPE_ENV) {
        if !name.is_empty() {
            return Some(name);
        }
    }
    imp::eventless(path)
}

#[cfg(target_os = "linux")]
mod imp {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    const V9FS: i64 = 0x0102_1997;
    const NFS: i64 = 0x6969;
    const CIFS: i64 = 0xFF53_4D42;
    const SMB2: i64 = 0xFE53_4D42;
    const SMB: i64 = 0x517B;
    const FUSE: i64 = 0x6573_5546;

    pub(super) fn eventless(path: &Path) -> Option<String> {
        let magic = magic(path)?;
        let mount_type =
            || mount_type(path, &std::fs::read_to_string("/proc/self/mountinfo").ok()?);
        classify(magic, path, mount_type)
    }

    /// What the magic number (and, where it is ambiguous, the mount table) says.
    pub(super) fn classify(
        magic: i64,
        path: &Path,
        mount_type: impl Fn() -> Option<String>,
    ) -> Option<String> {
        match magic {
            V9FS if path.starts_with("/mnt") => Some("9p (WSL's drvfs)".into()),
            V9FS => Some("9p".into()),
            NFS => Some("NFS".into()),
            CIFS | SMB2 | SMB => Some("CIFS/SMB".into()),
            FUSE => mount_type()
                .filter(|t| t == "virtiofs")
                .map(|_| "virtiofs".into()),
            _ => mount_type()
                .filter(|t| t == "drvfs")
                .map(|_| "WSL's drvfs".into()),
        }
    }

    fn magic(path: &Path) -> Option<i64> {
        let c_path = CString::new(path.as_os_str().as_bytes()).ok()?;
        // SAFETY: statfs is plain data; all-zero is a valid value to be overwritten.
        let mut buf: libc::statfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c_path` is NUL-terminated and `buf` is a valid, writable statfs.
        let rc = unsafe { libc::statfs(c_path.as_ptr(), &mut buf) };
        #[allow(clippy::unnecessary_cast)] // f_type's width differs between libcs.
        (rc == 0).then_some(buf.f_type as i64)
    }

    /// The type of the mount holding `path`, from `/proc/self/mountinfo`: the longest mount
    /// point that is a prefix of it.
    pub(super) fn mount_type(path: &Path, mountinfo: &str) -> Option<String> {
        mountinfo
            .lines()
            .filter_map(|line| {
                let mut fields = line.split(' ');
                let point = fields.nth(4)?;
                // The optional fields end at `-`; the type follows it.
                let fstype = fields.skip_while(|f| *f != "-").nth(1)?;
                Some((unescape(point), fstype.to_string()))
            })
            .filter(|(point, _)| path.starts_with(point))
            .max_by_key(|(point, _)| point.len())
            .map(|(_, fstype)| fstype)
    }

    /// Mount points escape space, tab, newline and backslash as octal (`\040`).
    fn unescape(text: &str) -> String {
        let mut out = String::new();
        let mut rest = text;
        while let Some(at) = rest.find('\\') {
            out.push_str(&rest[..at]);
            let code = rest.get(at + 1..at + 4);
            match code.and_then(|c| u8::from_str_radix(c, 8).ok()) {
                Some(byte) => {
                    out.push(byte as char);
                    rest = &rest[at + 4..];
                }
                None => {
                    out.push('\\');
                    rest = &rest[at + 1..];
                }
            }
        }
        out.push_str(rest);
        out
    }

    #[cfg(test)]
    mod tests {
        use super::*;

        const MOUNTINFO: &str = "\
22 1 0:21 / / rw,relatime - ext4 /dev/sda1 rw
30 22 0:40 / /workspace rw,relatime shared:5 - virtiofs myfs rw
31 22 0:41 / /mnt/c rw,noatime - 9p drvfs rw,dirsync
32 22 0:42 / /mnt/with\\040space rw - drvfs C: rw
";

        #[test]
        fn names_the_file_systems_without_events() {
            let none = || None;
            assert_eq!(
                classify(NFS, Path::new("/srv/x"), none).as_deref(),
                Some("NFS")
            );
            assert_eq!(
                classify(CIFS, Path::new("/srv/x"), none).as_deref(),
                Some("CIFS/SMB")
            );
            assert_eq!(
                classify(V9FS, Path::new("/src"), none).as_deref(),
                Some("9p")
            );
            assert_eq!(
                classify(V9FS, Path::new("/mnt/c/src"), none).as_deref(),
                Some("9p (WSL's drvfs)")
            );
            // ext4 and a FUSE file system that is not virtiofs: native events work.
            assert_eq!(
                classify(0xEF53, Path::new("/src"), || Some("ext4".into())),
                None
            );
            assert_eq!(
                classify(FUSE, Path::new("/x"), || Some("fuse.sshfs".into())),
                None
            );
            let virtiofs = || mount_type(Path::new("/workspace/app"), MOUNTINFO);
            assert_eq!(
                classify(FUSE, Path::new("/workspace/app"), virtiofs).as_deref(),
                Some("virtiofs")
            );
        }

        #[test]
        fn the_mount_table_gives_the_longest_mount_point() {
            let ty = |p: &str| mount_type(Path::new(p), MOUNTINFO);
            assert_eq!(ty("/home/me").as_deref(), Some("ext4"));
            assert_eq!(ty("/workspace/app/src").as_deref(), Some("virtiofs"));
            assert_eq!(ty("/mnt/c/Users").as_deref(), Some("9p"));
            assert_eq!(ty("/mnt/with space/x").as_deref(), Some("drvfs"));
        }

        #[test]
        fn a_local_directory_is_not_eventless() {
            let dir = tempfile::tempdir().unwrap();
            // The temp dir may itself be on tmpfs or overlayfs: both deliver events.
            assert_eq!(eventless(dir.path()), None);
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod imp {
    use std::path::Path;

    pub(super) fn eventless(_path: &Path) -> Option<String> {
        None
    }
}
