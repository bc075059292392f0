//! The WIT exports (`confab:sync/engine`), mapping WIT types to the core's
//! and back. One `sync-session` resource wraps one core [`Engine`].

use super::run::{BoundedClock, BoundedHttp};
use super::WasiFs;
use crate::cli::commands::Timeouts;
use crate::core::api_key::KeyGuard;
use crate::core::config::{RedactionPattern, RedactionSettings, SessionConfig};
use crate::core::engine::{self, Engine};
use crate::core::error::{ErrorKind, SyncError as CoreError};
use crate::core::report::{FileType as CoreFileType, SyncReport as CoreReport};
use std::cell::RefCell;

wit_bindgen::generate!({
    world: "sync-engine",
    path: "wit",
});

use confab::sync::types::{
    FileFailure, FileReport, FileStats, FileType, GithubLink, HttpError, RedactionCount,
    SessionConfig as WitConfig, SyncError, SyncReport,
};
use exports::confab::sync::engine::{Guest, GuestSyncSession, SyncSession as SyncSessionHandle};

/// The command's engine type (see [`BoundedHttp`]), here without a deadline.
type WasiEngine = Engine<WasiFs, BoundedHttp, BoundedClock>;

struct Component;

/// One engine, and the guard that keeps its key out of every message a
/// host gets back (errors, failed files, warnings).
pub struct SyncSession {
    engine: RefCell<WasiEngine>,
    guard: KeyGuard,
}

impl Guest for Component {
    type SyncSession = SyncSession;

    fn find_session_by_leaf_uuid(
        dir: String,
        leaf_uuid: String,
        exclude_file: Option<String>,
    ) -> Option<String> {
        engine::find_session_by_leaf_uuid(&WasiFs::new(), &dir, &leaf_uuid, exclude_file.as_deref())
    }
}

impl GuestSyncSession for SyncSession {
    fn open(config: WitConfig) -> Result<SyncSessionHandle, SyncError> {
        let guard = KeyGuard::for_key(&config.api_key);
        let engine = Engine::new(
            core_config(config),
            WasiFs::new(),
            BoundedHttp::unbounded(Timeouts::NORMAL),
            BoundedClock::UNBOUNDED,
        )
        .map_err(|e| wit_error(e, &guard))?;
        Ok(SyncSessionHandle::new(SyncSession {
            engine: RefCell::new(engine),
            guard,
        }))
    }

    fn init(&self) -> Result<String, SyncError> {
        self.engine
            .borrow_mut()
            .init()
            .map_err(|e| wit_error(e, &self.guard))
    }

    fn sync_all(&self) -> Result<SyncReport, SyncError> {
        self.engine
            .borrow_mut()
            .sync_all()
            .map(|r| wit_report(r, &self.guard))
            .map_err(|e| wit_error(e, &self.guard))
    }

    fn send_event(
        &self,
        event_type: String,
        timestamp: String,
        payload_json: String,
    ) -> Result<(), SyncError> {
        self.engine
            .borrow_mut()
            .send_event(&event_type, &timestamp, &payload_json)
            .map_err(|e| wit_error(e, &self.guard))
    }

    fn update_session_summary(
        &self,
        external_id: String,
        summary: String,
    ) -> Result<(), SyncError> {
        self.engine
            .borrow_mut()
            .update_session_summary(&external_id, &summary)
            .map_err(|e| wit_error(e, &self.guard))
    }

    fn link_github(&self, url: String, title: Option<String>) -> Result<GithubLink, SyncError> {
        let link = self
            .engine
            .borrow_mut()
            .link_github(&url, title.as_deref())
            .map_err(|e| wit_error(e, &self.guard))?;
        Ok(GithubLink {
            id: link.id,
            link_type: link.link_type,
            url: link.url,
        })
    }

    fn session_id(&self) -> Option<String> {
        self.engine.borrow().session_id().map(str::to_string)
    }

    fn stats(&self) -> Vec<FileStats> {
        self.engine
            .borrow()
            .stats()
            .into_iter()
            .map(|s| FileStats {
                name: s.name,
                file_type: wit_file_type(s.file_type),
                lines_synced: s.lines_synced,
            })
            .collect()
    }

    fn reset(&self) {
        self.engine.borrow_mut().reset();
    }
}

fn core_config(c: WitConfig) -> SessionConfig {
    SessionConfig {
        backend_url: c.backend_url,
        api_key: c.api_key,
        external_id: c.external_id,
        transcript_path: c.transcript_path,
        cwd: c.cwd,
        hostname: c.hostname,
        username: c.username,
        state_dir: c.state_dir,
        provider: c.provider,
        redaction: RedactionSettings {
            enabled: c.redaction.enabled,
            use_default_patterns: c.redaction.use_default_patterns,
            patterns: c
                .redaction
                .patterns
                .into_iter()
                .map(|p| RedactionPattern {
                    name: p.name,
                    pattern: p.pattern,
                    kind: p.kind,
                    capture_group: p.capture_group,
                    field_pattern: p.field_pattern,
                })
                .collect(),
        },
    }
}

fn wit_file_type(t: CoreFileType) -> FileType {
    match t {
        CoreFileType::Transcript => FileType::Transcript,
        CoreFileType::Agent => FileType::Agent,
        CoreFileType::WorkflowJournal => FileType::WorkflowJournal,
    }
}

fn wit_error(e: CoreError, guard: &KeyGuard) -> SyncError {
    let m = guard.hide_string(e.message);
    match e.kind {
        ErrorKind::NotInitialized => SyncError::NotInitialized(m),
        ErrorKind::Unauthorized => SyncError::Unauthorized(m),
        ErrorKind::SessionNotFound => SyncError::SessionNotFound(m),
        ErrorKind::RateLimited => SyncError::RateLimited(m),
        ErrorKind::Conflict => SyncError::Conflict(m),
        ErrorKind::Http(status) => SyncError::Http(HttpError { status, message: m }),
        ErrorKind::Transport => SyncError::Transport(m),
        ErrorKind::Io => SyncError::Io(m),
        ErrorKind::InvalidConfig => SyncError::InvalidConfig(m),
        ErrorKind::InvalidInput => SyncError::InvalidInput(m),
    }
}

fn wit_report(r: CoreReport, guard: &KeyGuard) -> SyncReport {
    SyncReport {
        files: r
            .files
            .into_iter()
            .map(|f| FileReport {
                name: f.name,
                file_type: wit_file_type(f.file_type),
                lines_synced: f.lines_synced,
                total_lines: f.total_lines,
                chunks: f.chunks,
            })
            .collect(),
        failed: r
            .failed
            .into_iter()
            .map(|f| FileFailure {
                name: f.name,
                error: wit_error(f.error, guard),
            })
            .collect(),
        chunks: r.chunks,
        lines: r.lines,
        bytes: r.bytes,
        wire_bytes: r.wire_bytes,
        read_bytes: r.read_bytes,
        retries: r.retries,
        invalid_utf8_lines: r.invalid_utf8_lines,
        redactions: r
            .redactions
            .0
            .into_iter()
            .map(|(kind, count)| RedactionCount { kind, count })
            .collect(),
        warnings: r
            .warnings
            .into_iter()
            .map(|w| guard.hide_string(w))
            .collect(),
    }
}

export!(Component);
