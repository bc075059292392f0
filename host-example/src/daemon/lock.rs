//! Advisory file locks (`flock`, through std's `File::try_lock`): the
//! running daemon holds `daemon.lock` for its whole life, so "is a daemon
//! running" is "is that lock held", and a crashed daemon leaves nothing
//! stale behind (the kernel drops the lock with the process). Hooks and a
//! daemon about to exit take `spawn.lock` for the short time they decide
//! whether to start a daemon or to exit, so two hooks racing start one.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::Path;

/// A lock held until dropped.
pub struct Held {
    _file: File,
}

fn open(path: &Path) -> std::io::Result<File> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
}

/// The lock, or `None` when another process holds it.
pub fn try_hold(path: &Path) -> std::io::Result<Option<Held>> {
    let file = open(path)?;
    match file.try_lock() {
        Ok(()) => Ok(Some(Held { _file: file })),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// The lock, waiting for whoever holds it.
pub fn hold(path: &Path) -> std::io::Result<Held> {
    let file = open(path)?;
    file.lock()?;
    Ok(Held { _file: file })
}

/// Whether another open file holds the lock now.
pub fn is_held(path: &Path) -> bool {
    if !path.exists() {
        return false;
    }
    matches!(try_hold(path), Ok(None))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_holder_at_a_time() {
        let path = std::env::temp_dir().join(format!("confab-lock-{}.lock", std::process::id()));
        let first = try_hold(&path).unwrap().expect("free");
        assert!(try_hold(&path).unwrap().is_none());
        assert!(is_held(&path));
        drop(first);
        assert!(!is_held(&path));
        let _ = std::fs::remove_file(&path);
    }
}
