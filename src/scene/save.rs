//! Writes a scene collection so that a crash or full disk never loses the one on disk:
//! write a temporary file beside it, fsync, keep the previous version as `.bak`, rename.

use super::Collection;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

pub fn to_toml_string(collection: &Collection) -> Result<String, toml::ser::Error> {
    toml::to_string_pretty(collection)
}

/// Saves `collection` to `path` atomically. The previous file, if any, is kept as `path.bak`.
pub fn save_file(collection: &Collection, path: &Path) -> io::Result<()> {
    let text = to_toml_string(collection).map_err(|error| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("cannot write the collection as TOML: {error}"),
        )
    })?;
    write_atomically(path, text.as_bytes())
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new file, never a
/// half-written one; the old one is kept as `path.bak`.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let directory = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let file_name = path.file_name().ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a file path", path.display()),
        )
    })?;
    let temporary = directory.join(format!(".{}.saving", file_name.to_string_lossy()));

    let result = (|| {
        let mut file = File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        drop(file);
        if path.exists() {
            let backup = path.with_file_name(format!("{}.bak", file_name.to_string_lossy()));
            fs::copy(path, &backup)?;
        }
        fs::rename(&temporary, path)?;
        // The rename is only durable once the directory entry is on disk.
        File::open(&directory)?.sync_all()
    })();
    if result.is_err() {
        let _ = fs::remove_file(&temporary);
    }
    result.map_err(|error| {
        io::Error::new(error.kind(), format!("saving {}: {error}", path.display()))
    })
}
