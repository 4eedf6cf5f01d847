//! Flags without the store: a bootstrap file to start from, and the last snapshot persisted to
//! a file for a cold start while the store is unreachable. Both are in the export format
//! ([`crate::export`]), so `flipper flags export` writes a valid bootstrap file.
//!
//! The snapshot is written atomically (a temporary file in the same directory, flushed, then
//! renamed over the old one), at most once per debounce period, and only with flags that came
//! from the store.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::core::Core;
use super::set::Entry;
use super::status::Source;
use crate::error::Error;
use crate::export;

/// Reads a file in the export format. Its flags have no store version.
pub(crate) fn read_file(path: &Path) -> Result<Vec<Entry>, Error> {
    let text = fs::read_to_string(path).map_err(|source| Error::Io {
        action: Error::READ,
        path: path.to_owned(),
        source,
    })?;
    let items = export::parse(&text).map_err(|message| Error::InvalidFile {
        path: path.to_owned(),
        message,
    })?;
    Ok(items
        .into_values()
        .map(|item| Entry::new(item, None))
        .collect())
}

/// [`read_file`] on the blocking pool.
pub(crate) async fn read_file_async(path: PathBuf) -> Result<Vec<Entry>, Error> {
    let for_error = path.clone();
    tokio::task::spawn_blocking(move || read_file(&path))
        .await
        .map_err(|e| Error::Io {
            action: Error::READ,
            path: for_error,
            source: io::Error::other(e),
        })?
}

/// Writes `text` to `path` atomically: readers see the old file or the new one, never a part.
fn write_atomic(path: &Path, text: &str) -> io::Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "not a file path"))?;
    let tmp = dir.join(format!(
        ".{}.{}.tmp",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = File::create(&tmp)?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        // The rename itself survives a crash once the directory is flushed (best effort: not
        // every platform opens directories).
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Writes the current flags to `path` if they came from the store and differ from `written`
/// (the version last written); returns the version now on disk.
pub(crate) async fn persist_once(
    core: &Core,
    path: &Path,
    written: Option<u64>,
) -> Result<Option<u64>, Error> {
    let set = core.current.load_full();
    if !set.is_initialized()
        || written == Some(set.version())
        || core.sync_state().source != Some(Source::Store)
    {
        return Ok(written);
    }
    let text = export::render(set.iter().map(|(_, item)| &**item));
    let target = path.to_owned();
    tokio::task::spawn_blocking(move || write_atomic(&target, &text))
        .await
        .map_err(io::Error::other)
        .and_then(|r| r)
        .map_err(|source| Error::Io {
            action: "cannot write",
            path: path.to_owned(),
            source,
        })?;
    Ok(Some(set.version()))
}

/// The persister: waits for a change, lets changes settle for `debounce`, writes.
pub(crate) async fn persist(core: Arc<Core>, path: PathBuf, debounce: Duration, wake: Arc<Notify>) {
    let mut written = None;
    loop {
        wake.notified().await;
        tokio::time::sleep(debounce).await;
        match persist_once(&core, &path, written).await {
            Ok(now) => written = now,
            Err(error) => tracing::warn!(%error, "cannot persist the flags snapshot"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn atomic_writes_replace_the_file_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snapshot.json");
        write_atomic(&path, "[]\n").unwrap();
        write_atomic(&path, "[\n]\n").unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "[\n]\n");
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().collect();
        assert_eq!(left.len(), 1, "no temporary file left behind");
        assert!(write_atomic(&dir.path().join("missing/x.json"), "[]").is_err());
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn bootstrap_files_name_their_mistakes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("flags.json");
        assert!(matches!(read_file(&path), Err(Error::Io { .. })));
        fs::write(&path, "{}").unwrap();
        assert!(matches!(read_file(&path), Err(Error::InvalidFile { .. })));
        fs::write(
            &path,
            export::render(&[flipper_core::Item::new("a", true, 1)]),
        )
        .unwrap();
        assert_eq!(read_file(&path).unwrap().len(), 1);
    }
}
