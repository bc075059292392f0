//! Runs the confab-sync component under wasmtime with the least it needs:
//! the folders it must read, preopened read-only at their own paths; outgoing
//! HTTP to one origin only (anything else is refused in the wasi:http send
//! hook); no environment, no stdio; a memory limit per store.
//!
//! The compiled component is kept for the life of the [`Sandbox`] and, when a
//! cache folder is given, on disk, so a second start does not recompile.

use std::future::Future;
use std::path::{Path, PathBuf};
use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
use wasmtime::error::Context;
use wasmtime::{format_err, Result};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::{FsPerms, WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpHooks, WasiHttpView};

wasmtime::component::bindgen!({
    world: "sync-engine",
    path: "../wit",
});

pub use confab::sync::types::{
    FileFailure, FileReport, FileStats, FileType, GithubLink, HttpError, RedactionCount,
    RedactionPattern, RedactionSettings, SessionConfig, SyncError, SyncReport,
};

/// What one store may touch.
#[derive(Debug, Clone)]
pub struct Grant {
    /// Folders preopened read-only, each at its own absolute path.
    pub read_only_dirs: Vec<PathBuf>,
    /// The only origin (`scheme://host:port`) outgoing requests may go to.
    pub allowed_origin: String,
    /// Linear memory limit of the component, in bytes.
    pub memory_limit: usize,
}

impl Grant {
    /// Read `dirs`, talk to the origin of `backend_url`, 256 MiB of memory.
    pub fn new(dirs: Vec<PathBuf>, backend_url: &str) -> Self {
        Grant {
            read_only_dirs: dirs,
            allowed_origin: origin_of_url(backend_url),
            memory_limit: 256 << 20,
        }
    }
}

/// `scheme://authority` of a URL, lower-cased.
pub fn origin_of_url(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap_or(("https", url));
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    format!(
        "{}://{}",
        scheme.to_ascii_lowercase(),
        authority.to_ascii_lowercase()
    )
}

/// The compiled component and a linker holding exactly the granted interfaces.
pub struct Sandbox {
    engine: Engine,
    component: Component,
    linker: Linker<HostState>,
}

impl Sandbox {
    /// Compile (or load from `cache_dir`) the component at `wasm_path`.
    pub fn load(wasm_path: &Path, cache_dir: Option<&Path>) -> Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        let engine = Engine::new(&config)?;
        let bytes = std::fs::read(wasm_path)
            .with_context(|| format!("cannot read the component {}", wasm_path.display()))?;
        let component = match cache_dir {
            Some(dir) => load_cached(&engine, &bytes, dir)?,
            None => Component::new(&engine, &bytes)?,
        };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
        Ok(Sandbox {
            engine,
            component,
            linker,
        })
    }

    /// A fresh instance in its own store, with `grant`'s rights only.
    pub fn instantiate(&self, grant: &Grant) -> Result<Instance> {
        let mut wasi = WasiCtxBuilder::new();
        for dir in &grant.read_only_dirs {
            let guest = dir
                .to_str()
                .ok_or_else(|| format_err!("folder path is not UTF-8: {}", dir.display()))?;
            wasi.preopened_dir(dir, guest, FsPerms::ReadOnly)
                .with_context(|| format!("cannot grant the folder {}", dir.display()))?;
        }
        let state = HostState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: OriginPolicy {
                allowed: grant.allowed_origin.clone(),
            },
            limits: StoreLimitsBuilder::new()
                .memory_size(grant.memory_limit)
                .instances(4)
                .build(),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        let bindings = SyncEngine::instantiate(&mut store, &self.component, &self.linker)?;
        Ok(Instance { store, bindings })
    }
}

/// The compiled artifact keyed by the component's bytes and wasmtime's version.
fn load_cached(engine: &Engine, bytes: &[u8], dir: &Path) -> Result<Component> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    env!("CARGO_PKG_VERSION").hash(&mut hasher);
    let path = dir.join(format!("confab_sync-{:016x}.cwasm", hasher.finish()));
    if path.exists() {
        // SAFETY: the file was written by `precompile_component` of this same
        // program (the key includes the component's hash); a stale or foreign
        // file fails wasmtime's own header checks and is recompiled below.
        if let Ok(component) = unsafe { Component::deserialize_file(engine, &path) } {
            return Ok(component);
        }
    }
    let compiled = engine.precompile_component(bytes)?;
    if std::fs::create_dir_all(dir).is_ok() {
        let tmp = path.with_extension("tmp");
        if std::fs::write(&tmp, &compiled).is_ok() {
            let _ = std::fs::rename(&tmp, &path);
        }
    }
    // SAFETY: produced just now by this engine.
    unsafe { Component::deserialize(engine, &compiled) }
}

/// A running component and its store; each WIT call is one method.
pub struct Instance {
    store: Store<HostState>,
    bindings: SyncEngine,
}

/// A `sync-session` resource inside an [`Instance`].
#[derive(Clone, Copy)]
pub struct SessionHandle(ResourceAny);

/// A WIT call either traps (a bug or a limit: `Err`) or returns the WIT result.
pub type Call<T> = Result<std::result::Result<T, SyncError>>;

impl Instance {
    pub fn open(&mut self, config: &SessionConfig) -> Call<SessionHandle> {
        let api = self.bindings.confab_sync_engine().sync_session();
        Ok(api.call_open(&mut self.store, config)?.map(SessionHandle))
    }
    pub fn init(&mut self, s: SessionHandle) -> Call<String> {
        let api = self.bindings.confab_sync_engine().sync_session();
        api.call_init(&mut self.store, s.0)
    }
    pub fn sync_all(&mut self, s: SessionHandle) -> Call<SyncReport> {
        let api = self.bindings.confab_sync_engine().sync_session();
        api.call_sync_all(&mut self.store, s.0)
    }
    pub fn send_event(
        &mut self,
        s: SessionHandle,
        event_type: &str,
        timestamp: &str,
        payload: &str,
    ) -> Call<()> {
        let api = self.bindings.confab_sync_engine().sync_session();
        api.call_send_event(&mut self.store, s.0, event_type, timestamp, payload)
    }
    pub fn update_session_summary(
        &mut self,
        s: SessionHandle,
        external_id: &str,
        summary: &str,
    ) -> Call<()> {
        let api = self.bindings.confab_sync_engine().sync_session();
        api.call_update_session_summary(&mut self.store, s.0, external_id, summary)
    }
    pub fn link_github(
        &mut self,
        s: SessionHandle,
        url: &str,
        title: Option<&str>,
    ) -> Call<GithubLink> {
        let api = self.bindings.confab_sync_engine().sync_session();
        api.call_link_github(&mut self.store, s.0, url, title)
    }
    pub fn session_id(&mut self, s: SessionHandle) -> Result<Option<String>> {
        let api = self.bindings.confab_sync_engine().sync_session();
        api.call_session_id(&mut self.store, s.0)
    }
    pub fn stats(&mut self, s: SessionHandle) -> Result<Vec<FileStats>> {
        let api = self.bindings.confab_sync_engine().sync_session();
        api.call_stats(&mut self.store, s.0)
    }
    pub fn reset(&mut self, s: SessionHandle) -> Result<()> {
        let api = self.bindings.confab_sync_engine().sync_session();
        api.call_reset(&mut self.store, s.0)
    }
    pub fn find_session_by_leaf_uuid(
        &mut self,
        dir: &str,
        leaf: &str,
        exclude: Option<&str>,
    ) -> Result<Option<String>> {
        self.bindings
            .confab_sync_engine()
            .call_find_session_by_leaf_uuid(&mut self.store, dir, leaf, exclude)
    }
}

struct HostState {
    wasi: WasiCtx,
    http: WasiHttpCtx,
    table: ResourceTable,
    hooks: OriginPolicy,
    limits: StoreLimits,
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}

/// Refuses every outgoing request whose origin is not the backend's.
struct OriginPolicy {
    allowed: String,
}

impl WasiHttpHooks for OriginPolicy {
    fn send_request(
        &mut self,
        request: http::Request<wasmtime_wasi_http::WasiBody>,
        options: Option<wasmtime_wasi_http::RequestOptions>,
        fut: Box<dyn Future<Output = std::result::Result<(), wasmtime_wasi_http::Error>> + Send>,
    ) -> Box<
        dyn Future<
                Output = wasmtime_wasi_http::Result<(
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<
                        dyn Future<Output = std::result::Result<(), wasmtime_wasi_http::Error>>
                            + Send,
                    >,
                )>,
            > + Send,
    > {
        drop(fut);
        let uri = request.uri();
        let origin = format!(
            "{}://{}",
            uri.scheme_str().unwrap_or("https").to_ascii_lowercase(),
            uri.authority()
                .map(|a| a.as_str().to_ascii_lowercase())
                .unwrap_or_default()
        );
        let allowed = origin == self.allowed;
        if !allowed {
            eprintln!(
                "confab-host: refused a request to {origin}: only {} is allowed",
                self.allowed
            );
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            if !allowed {
                return Err(wasmtime_wasi_http::Error::HttpRequestDenied);
            }
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            Ok((
                res.map(BodyExt::boxed_unsync),
                Box::new(io)
                    as Box<
                        dyn Future<Output = std::result::Result<(), wasmtime_wasi_http::Error>>
                            + Send,
                    >,
            ))
        })
    }
}
