//! macOS: reflinks with clonefile(2) (APFS), hardlinks, and (device, inode) as identity.

use std::ffi::CString;
use std::fs;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Cargo and the linkers (ld64, ld-prime, lld) replace outputs with new inodes.
pub const HARDLINKS: bool = true;

pub fn file_id(meta: &fs::Metadata) -> u128 {
    (u128::from(meta.dev()) << 64) | u128::from(meta.ino())
}

/// clonefile(2) creates `dest` itself (it must not exist) with `source`'s mode.
pub fn reflink(source: &Path, dest: &Path) -> std::io::Result<()> {
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    };
    let (from, to) = (c(source)?, c(dest)?);
    // SAFETY: two valid NUL-terminated paths; flags 0.
    if unsafe { libc::clonefile(from.as_ptr(), to.as_ptr(), 0) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}
