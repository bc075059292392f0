//! Support for the scenarios of a last line without its newline (Cursor
//! writes none after its last record): the comparison that allows exactly
//! that missing byte, and instances that keep a checkpoint.

use super::{sandbox, Grant, SessionConfig, Synced};
use confab_host::backend::Backend;
use std::path::Path;

/// Assert that the backend holds every line of the file, its last one too
/// when the source lacks the final `\n`: the stored bytes are the source's,
/// plus that one `\n`, and nothing else may differ.
pub fn assert_stored_adding_final_newline(backend: &Backend, external_id: &str, file: &Path) {
    let name = file.file_name().unwrap().to_string_lossy();
    let mut expected = std::fs::read(file).unwrap();
    if expected.last().is_some_and(|&b| b != b'\n') {
        expected.push(b'\n');
    }
    let stored = backend.file(external_id, &name).unwrap_or_default();
    assert!(
        stored == expected,
        "{name}: the backend holds {} bytes ({} lines), the source with its final newline is {} bytes ({} lines)",
        stored.len(),
        stored.iter().filter(|&&b| b == b'\n').count(),
        expected.len(),
        expected.iter().filter(|&&b| b == b'\n').count()
    );
}

/// Like [`Synced::start`], with `state_dir` granted read-write and named in
/// the configuration, so the engine saves and finds its checkpoint there.
pub fn start_with_state(backend: &Backend, mut config: SessionConfig, state_dir: &Path) -> Synced {
    let folder = Path::new(&config.transcript_path)
        .parent()
        .unwrap()
        .to_path_buf();
    config.state_dir = Some(state_dir.to_str().unwrap().to_string());
    let mut grant = Grant::new(vec![folder], &backend.url());
    grant.read_write_dirs.push(state_dir.to_path_buf());
    let mut instance = sandbox().instantiate(&grant).expect("instantiate");
    let session = instance.open(&config).expect("no trap").expect("open");
    instance.init(session).expect("no trap").expect("init");
    Synced { instance, session }
}
