//! Runs the confab-sync component under wasmtime with the least it needs:
//! the folders it must read, preopened read-only at their own paths; outgoing
//! HTTP to one origin only (anything else is refused in the wasi:http send
//! hook); no environment, no stdio; a memory limit per store.
//!
//! The compiled component is kept for the life of the [`Sandbox`] and, when a
//! cache folder is given, on disk, so a second start does not recompile.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;
use wasmtime::component::{Component, Linker, ResourceAny, ResourceTable};
use wasmtime::error::Context;
use wasmtime::{format_err, Result};
use wasmtime::{Config, Engine, Store, StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::bindings::sync::Command;
use wasmtime_wasi::p2::pipe::{MemoryInputPipe, MemoryOutputPipe};
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
    /// Folders preopened read-write, each at its own path: only the state
    /// folder, where the engine keeps its checkpoint.
    pub read_write_dirs: Vec<PathBuf>,
    /// The only origin (`scheme://host:port`) outgoing requests may go to.
    pub allowed_origin: String,
    /// Linear memory limit of the component, in bytes.
    pub memory_limit: usize,
    /// Longest time one call into the component may run (`None`: no limit,
    /// e.g. for `watch`); enforced with wasmtime's epoch interruption, so
    /// only by a sandbox loaded with [`Deadlines::Enforced`].
    pub deadline: Option<Duration>,
    /// Lets [`Instance::trap_after_next_chunk`] crash this instance on
    /// purpose (tests of a host that must survive a crashed instance).
    /// Needs [`Deadlines::Enforced`]; off by default.
    pub fault_injection: bool,
}

impl Grant {
    /// Read `dirs`, talk to the origin of `backend_url`, 256 MiB of memory.
    pub fn new(dirs: Vec<PathBuf>, backend_url: &str) -> Self {
        Grant {
            read_only_dirs: dirs,
            read_write_dirs: Vec::new(),
            allowed_origin: origin_of_url(backend_url),
            memory_limit: 256 << 20,
            deadline: Some(Duration::from_secs(3600)),
            fault_injection: false,
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

/// Whether calls into the component can be stopped at their deadline.
/// wasmtime's epoch interruption compiles a check into every loop and
/// function entry of the component: it made a whole sync about 30% slower
/// (zstd's and the scanners' tight loops), so it is paid only where a
/// deadline matters, e.g. for a Claude Code hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deadlines {
    /// [`Grant::deadline`] holds: a call past it traps.
    Enforced,
    /// Calls run until they return; [`Grant::deadline`] is ignored.
    Off,
}

/// The compiled component and a linker holding exactly the granted interfaces.
pub struct Sandbox {
    engine: Engine,
    component: Component,
    linker: Linker<HostState>,
    deadlines: Deadlines,
}

impl Sandbox {
    /// Compile (or load from `cache_dir`) the component at `wasm_path`.
    pub fn load(wasm_path: &Path, cache_dir: Option<&Path>, deadlines: Deadlines) -> Result<Self> {
        let mut config = Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(deadlines == Deadlines::Enforced);
        // `CONFAB_HOST_PROFILE=perfmap` writes /tmp/perf-<pid>.map so that
        // `perf report` names the guest's functions (BENCHMARKS.md, "Profiling").
        // The map is written as code is compiled, so the cache is bypassed.
        let mut cache_dir = cache_dir;
        if std::env::var_os("CONFAB_HOST_PROFILE").is_some_and(|v| v == "perfmap") {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
            cache_dir = None;
        }
        let engine = Engine::new(&config)?;
        if deadlines == Deadlines::Enforced {
            start_epoch_ticker(&engine);
        }
        let bytes = std::fs::read(wasm_path)
            .with_context(|| format!("cannot read the component {}", wasm_path.display()))?;
        let component = match cache_dir {
            Some(dir) => load_cached(&engine, &bytes, dir, deadlines)?,
            None => Component::new(&engine, &bytes)?,
        };
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker)?;
        wasmtime_wasi_http::p2::add_only_http_to_linker_sync(&mut linker)?;
        Ok(Sandbox {
            engine,
            component,
            linker,
            deadlines,
        })
    }

    /// A fresh instance in its own store, with `grant`'s rights only.
    pub fn instantiate(&self, grant: &Grant) -> Result<Instance> {
        let mut store = self.store(grant, WasiCtxBuilder::new())?;
        let bindings = SyncEngine::instantiate(&mut store, &self.component, &self.linker)?;
        Ok(Instance { store, bindings })
    }

    /// Run the component's `wasi:cli/run` (its command line) with `grant`'s
    /// rights plus the given arguments, environment and stdin; stdout and
    /// stderr are this process's. Returns whether the command succeeded.
    pub fn run_command(
        &self,
        grant: &Grant,
        args: &[String],
        env: &[(String, String)],
        stdin: Vec<u8>,
    ) -> Result<bool> {
        let mut wasi = command_wasi(args, env, stdin);
        wasi.inherit_stdout().inherit_stderr();
        self.run_wasi_command(grant, wasi)
    }

    /// [`Self::run_command`] with stdout and stderr kept (each up to
    /// `max_output` bytes) rather than printed: for runs side by side,
    /// whose output the host sums up (`sync --all`).
    pub fn run_command_captured(
        &self,
        grant: &Grant,
        args: &[String],
        env: &[(String, String)],
        max_output: usize,
    ) -> Result<CapturedRun> {
        let stdout = MemoryOutputPipe::new(max_output);
        let stderr = MemoryOutputPipe::new(max_output);
        let mut wasi = command_wasi(args, env, Vec::new());
        wasi.stdout(stdout.clone()).stderr(stderr.clone());
        let ok = self.run_wasi_command(grant, wasi)?;
        Ok(CapturedRun {
            ok,
            stdout: stdout.contents().to_vec(),
            stderr: stderr.contents().to_vec(),
        })
    }

    fn run_wasi_command(&self, grant: &Grant, wasi: WasiCtxBuilder) -> Result<bool> {
        let mut store = self.store(grant, wasi)?;
        let instance = self.linker.instantiate(&mut store, &self.component)?;
        let command = Command::new(&mut store, &instance)?;
        match command.wasi_cli_run().call_run(&mut store) {
            Ok(result) => Ok(result.is_ok()),
            // `wasi:cli/exit` (e.g. Rust's `std::process::exit`) ends the run
            // with a status; it is not a trap.
            Err(e) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                Some(exit) => Ok(exit.0 == 0),
                None => Err(e),
            },
        }
    }

    fn store(&self, grant: &Grant, mut wasi: WasiCtxBuilder) -> Result<Store<HostState>> {
        for dir in &grant.read_write_dirs {
            let guest = dir
                .to_str()
                .ok_or_else(|| format_err!("folder path is not UTF-8: {}", dir.display()))?;
            wasi.preopened_dir(dir, guest, FsPerms::ReadWrite)
                .with_context(|| format!("cannot grant the state folder {}", dir.display()))?;
        }
        for dir in &grant.read_only_dirs {
            let guest = dir
                .to_str()
                .ok_or_else(|| format_err!("folder path is not UTF-8: {}", dir.display()))?;
            wasi.preopened_dir(dir, guest, FsPerms::ReadOnly)
                .with_context(|| format!("cannot grant the folder {}", dir.display()))?;
        }
        // The component runs synchronously: its file reads (MiBs each) are
        // done on this thread rather than handed to a blocking-pool thread
        // and waited for.
        wasi.allow_blocking_current_thread(true);
        let trap = Arc::new(TrapSwitch::default());
        let state = HostState {
            wasi: wasi.build(),
            http: WasiHttpCtx::new(),
            table: ResourceTable::new(),
            hooks: OriginPolicy {
                allowed: grant.allowed_origin.clone(),
                trap: trap.clone(),
            },
            limits: StoreLimitsBuilder::new()
                .memory_size(grant.memory_limit)
                .instances(4)
                .build(),
            deadline_ticks: None,
            fault_injection: false,
            ticks_left: 0,
            trap,
        };
        let ticks = grant.deadline.map_or(u64::MAX, |d| {
            (d.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
        });
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limits);
        if self.deadlines == Deadlines::Enforced {
            store.data_mut().deadline_ticks = Some(ticks);
            if grant.fault_injection {
                // Woken every tick, so that a requested trap lands within one.
                store.data_mut().fault_injection = true;
                store.data_mut().ticks_left = ticks;
                store.set_epoch_deadline(1);
                store.epoch_deadline_callback(|mut ctx| {
                    let state = ctx.data_mut();
                    if state.trap.now.load(Ordering::SeqCst) || state.ticks_left == 0 {
                        return Err(wasmtime::Trap::Interrupt.into());
                    }
                    state.ticks_left -= 1;
                    Ok(wasmtime::UpdateDeadline::Continue(1))
                });
            } else {
                store.set_epoch_deadline(ticks);
                store.epoch_deadline_trap();
            }
        }
        Ok(store)
    }
}

/// What a command run with [`Sandbox::run_command_captured`] did and said.
#[derive(Debug, Clone)]
pub struct CapturedRun {
    /// Whether the command succeeded (its `wasi:cli/run` result or exit status).
    pub ok: bool,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// A command's arguments (after the program name), environment and stdin.
fn command_wasi(args: &[String], env: &[(String, String)], stdin: Vec<u8>) -> WasiCtxBuilder {
    let mut wasi = WasiCtxBuilder::new();
    wasi.arg("confab-sync")
        .args(args)
        .stdin(MemoryInputPipe::new(stdin));
    for (k, v) in env {
        wasi.env(k, v);
    }
    wasi
}

/// How often the epoch advances: the granularity of call deadlines.
const EPOCH_TICK: Duration = Duration::from_millis(100);

/// One thread per engine advances its epoch; it ends with the engine.
fn start_epoch_ticker(engine: &Engine) {
    let weak = engine.weak();
    std::thread::spawn(move || loop {
        std::thread::sleep(EPOCH_TICK);
        match weak.upgrade() {
            Some(engine) => engine.increment_epoch(),
            None => break,
        }
    });
}

/// The compiled artifact keyed by the component's bytes and wasmtime's version.
fn load_cached(
    engine: &Engine,
    bytes: &[u8],
    dir: &Path,
    deadlines: Deadlines,
) -> Result<Component> {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    env!("CARGO_PKG_VERSION").hash(&mut hasher);
    // Code with and without deadline checks differs: one file each.
    (deadlines == Deadlines::Enforced).hash(&mut hasher);
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
    /// Each call gets the whole deadline of the grant.
    fn arm(&mut self) {
        if let Some(ticks) = self.store.data().deadline_ticks {
            if self.store.data().fault_injection {
                self.store.data_mut().ticks_left = ticks;
                self.store.set_epoch_deadline(1);
            } else {
                self.store.set_epoch_deadline(ticks);
            }
        }
    }

    /// Make this instance trap (`wasm trap: interrupt`) within a tick of
    /// the backend receiving its next chunk: the chunk is stored, the guest
    /// never learns so, and the instance is dead. A fault for tests; only
    /// with [`Grant::fault_injection`] (else this does nothing).
    pub fn trap_after_next_chunk(&mut self) {
        if self.store.data().fault_injection {
            self.store.data().trap.armed.store(true, Ordering::SeqCst);
        }
    }

    pub fn open(&mut self, config: &SessionConfig) -> Call<SessionHandle> {
        self.arm();
        let api = self.bindings.confab_sync_engine().sync_session();
        Ok(api.call_open(&mut self.store, config)?.map(SessionHandle))
    }
    pub fn init(&mut self, s: SessionHandle) -> Call<String> {
        self.arm();
        let api = self.bindings.confab_sync_engine().sync_session();
        api.call_init(&mut self.store, s.0)
    }
    pub fn sync_all(&mut self, s: SessionHandle) -> Call<SyncReport> {
        self.arm();
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
        self.arm();
        let api = self.bindings.confab_sync_engine().sync_session();
        api.call_send_event(&mut self.store, s.0, event_type, timestamp, payload)
    }
    pub fn update_session_summary(
        &mut self,
        s: SessionHandle,
        external_id: &str,
        summary: &str,
    ) -> Call<()> {
        self.arm();
        let api = self.bindings.confab_sync_engine().sync_session();
        api.call_update_session_summary(&mut self.store, s.0, external_id, summary)
    }
    pub fn link_github(
        &mut self,
        s: SessionHandle,
        url: &str,
        title: Option<&str>,
    ) -> Call<GithubLink> {
        self.arm();
        let api = self.bindings.confab_sync_engine().sync_session();
        api.call_link_github(&mut self.store, s.0, url, title)
    }
    pub fn session_id(&mut self, s: SessionHandle) -> Result<Option<String>> {
        self.arm();
        let api = self.bindings.confab_sync_engine().sync_session();
        api.call_session_id(&mut self.store, s.0)
    }
    pub fn stats(&mut self, s: SessionHandle) -> Result<Vec<FileStats>> {
        self.arm();
        let api = self.bindings.confab_sync_engine().sync_session();
        api.call_stats(&mut self.store, s.0)
    }
    pub fn reset(&mut self, s: SessionHandle) -> Result<()> {
        self.arm();
        let api = self.bindings.confab_sync_engine().sync_session();
        api.call_reset(&mut self.store, s.0)
    }
    pub fn find_session_by_leaf_uuid(
        &mut self,
        dir: &str,
        leaf: &str,
        exclude: Option<&str>,
    ) -> Result<Option<String>> {
        self.arm();
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
    /// Epoch ticks each call may run (see [`Grant::deadline`]); `None`
    /// without [`Deadlines::Enforced`].
    deadline_ticks: Option<u64>,
    /// With [`Grant::fault_injection`]: ticks left to the current call
    /// (the deadline callback counts them down one by one).
    fault_injection: bool,
    ticks_left: u64,
    trap: Arc<TrapSwitch>,
}

/// [`Instance::trap_after_next_chunk`]: armed by the host, fired by the
/// HTTP hook when a chunk goes out, acted on by the epoch callback.
#[derive(Default)]
struct TrapSwitch {
    armed: AtomicBool,
    now: AtomicBool,
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
    trap: Arc<TrapSwitch>,
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
        let trap_after = allowed
            && uri.path() == "/api/v1/sync/chunk"
            && self.trap.armed.swap(false, Ordering::SeqCst);
        let trap = self.trap.clone();
        if !allowed {
            eprintln!(
                "confab-host: refused a request to {origin}: only {} is allowed",
                self.allowed
            );
        }
        Box::new(async move {
            use http_body_util::BodyExt;
            if !allowed {
                // Take in (and throw away) the body the guest is writing before
                // refusing, so that it sees the refusal itself rather than a
                // body stream closed under it (read as a lost answer). Bounded:
                // a guest that never finishes its body is refused after 5 s.
                let drain = request.into_body().collect();
                let _ = tokio::time::timeout(Duration::from_secs(5), drain).await;
                return Err(wasmtime_wasi_http::Error::HttpRequestDenied);
            }
            let (res, io) = wasmtime_wasi_http::default_send_request(request, options).await?;
            if trap_after {
                // The chunk is stored; the guest traps at its first epoch
                // check once it has the answer (two ticks on, the deadline
                // of one tick is past).
                trap.now.store(true, Ordering::SeqCst);
                tokio::time::sleep(EPOCH_TICK * 2).await;
            }
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
