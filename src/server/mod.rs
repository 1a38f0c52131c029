//! `clipsight serve`: the REST API (actix-web, OpenAPI 3 via utoipa) and the embedded web UI.
//!
//! ```text
//! request → App middleware (metrics, security headers) → route: parse → Library (blocking pool)
//!         → JSON view
//! worker thread: load graph + keywords → run queued indexing jobs → reload them
//! ```

pub mod auth;
#[cfg(test)]
mod auth_tests;
pub mod error;
mod json;
mod metrics;
pub mod openapi;
mod params;
mod routes;
mod upload;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::dev::Service;
use actix_web::http::StatusCode;
use actix_web::middleware::{Compress, DefaultHeaders};
use actix_web::{web, App, HttpServer};
use utoipa_actix_web::{scope, AppExt};

use crate::auth::{AccessControl, Anonymous, CredentialFile};
use crate::library::{watch, Library, Trigger};
use error::{extractor_error, ApiError};

/// Largest total size of a request's headers.
const MAX_HEADER_BYTES: usize = 16 * 1024;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Address to listen on (default 127.0.0.1:8080).
    pub bind: SocketAddr,
    /// Who may do what: tokens from the command line, `--public`, session length, lockout.
    pub access: crate::auth::AccessSettings,
    /// Upload size limit in bytes.
    pub upload_limit: usize,
    /// Folders to watch for changes (and index at start).
    pub watch: Vec<PathBuf>,
    /// HTTP worker threads (0: one per core).
    pub workers: usize,
}

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// Watching a folder failed.
    #[error("cannot watch the folders: {0}")]
    Watch(#[from] notify_debouncer_mini::notify::Error),
    /// The server stopped with an error.
    #[error("server error: {0}")]
    Io(#[from] std::io::Error),
    /// The credentials are unreadable, or the server would be open to the network.
    #[error(transparent)]
    Access(#[from] crate::auth::AuthError),
    /// Flushing the store at shutdown failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// Caps glibc's malloc arenas. By default every thread that allocates may get its own arena (up
/// to 8 per core), each keeping its high-water mark: under 64 concurrent connections while
/// indexing, the server's RSS grew 12–20 % in a minute without leaking anything; with two
/// arenas it grew 0.4 % at the same throughput (tests/integration/load.rs).
fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator tunable; it is called before the server's threads
    // start and takes no pointers.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// Loads the text tower by encoding one text, logging how long it took.
fn warm_text_encoder(library: &Library) {
    let started = Instant::now();
    match library.encoder().encode_texts(&["a photo"]) {
        Ok(_) => tracing::info!("text encoder ready after {:.2}s", started.elapsed().as_secs_f64()),
        Err(e) => tracing::warn!("cannot load the text encoder: {e}"),
    }
}

/// Serves the library until SIGINT/SIGTERM; in-flight requests finish, then the store is flushed
/// and closed before this returns.
/// `writable` is false when another process holds the writer lock.
pub fn serve(library: Library, options: ServeOptions) -> Result<(), ServeError> {
    let started = Instant::now();
    limit_malloc_arenas();
    let access = AccessControl::open(Some(CredentialFile::of_library(library.store().dir())), options.access.clone(), options.bind.ip().is_loopback())?;
    if access.anonymous() != Anonymous::Nothing && !options.bind.ip().is_loopback() {
        tracing::warn!("--public: anyone who can reach {} can search and view every photo without signing in", options.bind);
    }
    let library = Arc::new(library);
    library.mark_loading();
    let warm = {
        let library = library.clone();
        std::thread::Builder::new().name("clipsight-warm".into()).spawn(move || warm_text_encoder(&library))?
    };
    let worker = {
        let library = library.clone();
        std::thread::Builder::new().name("clipsight-jobs".into()).spawn(move || {
            // The text tower (a ViT-B/32 text session takes about a second to create) before the
            // graph: at a million images the graph reads gigabytes, and on a cold disk the first
            // query would otherwise wait behind those reads for the tower's. A query arriving
            // meanwhile waits for this one load, and is answered from the flat copy or its sketch.
            library.work(move || {
                let _ = warm.join();
            })
        })?
    };
    let watcher = if options.watch.is_empty() {
        None
    } else if !library.writable() {
        tracing::warn!("--watch ignored: another process owns this library");
        None
    } else {
        let w = watch::watch(&library, &options.watch)?;
        let _ = library.start_indexing(Trigger::Startup);
        Some(w)
    };
    let shared = Shared::new(library.clone(), &options, access);
    let server = HttpServer::new(move || app(&shared))
    // Responses go out as soon as they are written: with Nagle's algorithm a keep-alive client's
    // delayed ACK added ~40 ms to every response (measured with `clipsight bench query`).
    .on_connect(|conn, _| {
        if let Some(tcp) = conn.downcast_ref::<actix_web::rt::net::TcpStream>() {
            let _ = tcp.set_nodelay(true);
        }
    })
    .client_request_timeout(Duration::from_secs(10))
    .client_disconnect_timeout(Duration::from_secs(2))
    .keep_alive(Duration::from_secs(30))
    .shutdown_timeout(30)
    // Blocking work (inference, RocksDB) is CPU-bound: more threads than cores only add memory
    // (a malloc arena and a stack each) and contention.
    .worker_max_blocking_threads(2 * std::thread::available_parallelism().map_or(2, |n| n.get()));
    let server = if options.workers > 0 { server.workers(options.workers) } else { server };
    let server = server.bind(options.bind).map_err(|source| ServeError::Bind { addr: options.bind, source })?;
    let addrs = server.addrs();
    let dir = library.store().dir().to_path_buf();
    actix_web::rt::System::new().block_on(async move {
        let server = server.shutdown_signal(stop_signal()?);
        // Announced only now, with the signal handlers in place: from this line on, SIGTERM or
        // SIGINT always stops the server cleanly.
        for addr in &addrs {
            // Printed (not only logged) so scripts and tests can find the port when binding :0. No
            // image count here: counting is a key scan, and start-up should not wait for one.
            println!("clipsight: serving {} on http://{addr}/ (ready in {:.2}s)", dir.display(), started.elapsed().as_secs_f64());
        }
        server.run().await
    })?;
    tracing::info!("shutting down: stopping indexing, flushing the library");
    drop(watcher);
    library.shutdown();
    // An indexing run stops at its next batch and is waited for; a worker that is only loading
    // the indexes (40 s for a million-image graph) is not: they are derived data, loaded again
    // at the next start, and the process exits around it.
    let deadline = Instant::now() + LOADING_WAIT;
    while !worker.is_finished() && (library.jobs().running().is_some() || Instant::now() < deadline) {
        std::thread::sleep(Duration::from_millis(20));
    }
    if !worker.is_finished() {
        tracing::info!("stopping while the indexes load; not waiting for them");
        library.store().flush()?;
        return Ok(());
    }
    if worker.join().is_err() {
        tracing::error!("the indexing thread panicked");
    }
    library.store().flush()?;
    close(library);
    Ok(())
}

/// How long a stopping server waits for a worker that is loading the indexes, not indexing.
const LOADING_WAIT: Duration = Duration::from_secs(2);

/// What every HTTP worker's app shares: the library, the OpenAPI documents, the metrics, the
/// access control and the upload limit.
#[derive(Clone)]
pub struct Shared {
    library: web::Data<Library>,
    docs: web::Data<openapi::Documents>,
    metrics: web::Data<metrics::Metrics>,
    access: web::Data<AccessControl>,
    limit: web::Data<upload::UploadLimit>,
}

impl Shared {
    /// The state for serving `library` with `options`' upload limit and `access`.
    pub fn new(library: Arc<Library>, options: &ServeOptions, access: AccessControl) -> Self {
        Self {
            library: web::Data::from(library),
            docs: web::Data::new(openapi::Documents::new()),
            metrics: web::Data::new(metrics::Metrics::default()),
            access: web::Data::new(access),
            limit: web::Data::new(upload::UploadLimit(options.upload_limit)),
        }
    }
}

/// The whole application — routes, middleware, error handlers — for one worker; `serve` runs it
/// on sockets, tests call it in process (`actix_web::test::init_service(app(&shared))`).
pub fn app(
    shared: &Shared,
) -> App<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    let Shared { library, docs, metrics, access, limit } = shared.clone();
    let metrics_mw = metrics.clone();
    App::new()
        .app_data(library)
        .app_data(docs)
        .app_data(metrics)
        .app_data(access)
        .app_data(limit)
        .app_data(web::JsonConfig::default().limit(1 << 20).error_handler(|e, _| {
            let status = match &e {
                actix_web::error::JsonPayloadError::Overflow { .. } | actix_web::error::JsonPayloadError::OverflowKnownLength { .. } => StatusCode::PAYLOAD_TOO_LARGE,
                actix_web::error::JsonPayloadError::ContentType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
                _ => StatusCode::BAD_REQUEST,
            };
            extractor_error("bad_json", e, status)
        }))
        .app_data(web::QueryConfig::default().error_handler(|e, _| extractor_error("bad_parameter", e, StatusCode::BAD_REQUEST)))
        .app_data(web::PathConfig::default().error_handler(|e, _| extractor_error("bad_path", e, StatusCode::BAD_REQUEST)))
        // Innermost: panics become JSON 500s, and every 5xx is logged with its route.
        .wrap_fn(error::answer_panics)
        // Before any route: who is calling, and what they may not see.
        .wrap_fn(auth::guard)
        .wrap(Compress::default())
        .wrap(
            DefaultHeaders::new()
                .add(("X-Content-Type-Options", "nosniff"))
                .add(("X-Frame-Options", "DENY"))
                .add(("Referrer-Policy", "no-referrer"))
                .add(("Content-Security-Policy", "default-src 'self'; img-src 'self' blob: data:; style-src 'self' 'unsafe-inline'")),
        )
        .wrap_fn(|req, srv| {
            // actix reads at most 128 KiB of request head; we accept 16 KiB of headers.
            let size: usize = req.headers().iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum();
            let fut = (size <= MAX_HEADER_BYTES).then(|| srv.call(req));
            async move {
                match fut {
                    Some(fut) => fut.await,
                    None => Err(ApiError::new(StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large", format!("request headers are limited to {MAX_HEADER_BYTES} bytes")).into()),
                }
            }
        })
        .wrap_fn(move |req, srv| {
            let started = Instant::now();
            let method = req.method().to_string();
            let metrics = metrics_mw.clone();
            let fut = srv.call(req);
            async move {
                // An error here (a handler that panicked) is counted too, under "unmatched":
                // its request is gone with it.
                let res = fut.await.inspect_err(|e| {
                    metrics.observe(&method, "unmatched", e.as_response_error().status_code().as_u16(), started.elapsed().as_secs_f64());
                })?;
                let route = res.request().match_pattern().unwrap_or_else(|| "unmatched".into());
                metrics.observe(&method, &route, res.status().as_u16(), started.elapsed().as_secs_f64());
                Ok(res)
            }
        })
        .into_utoipa_app()
        .service(scope("/api").configure(routes::api))
        .into_app()
        .route("/metrics", web::get().to(routes::system::metrics))
        .route("/", web::get().to(routes::web_ui::index))
        .route(auth::SIGN_IN_PAGE, web::get().to(routes::web_ui::sign_in))
        .route("/{file}", web::get().to(routes::web_ui::asset))
        .default_service(web::to(|req: actix_web::HttpRequest, docs: web::Data<openapi::Documents>| async move {
            openapi::unrouted(docs.get(Anonymous::Nothing), req.method(), req.path())
        }))
}

/// A future that completes at the first SIGTERM or SIGINT, for actix-web's `shutdown_signal`
/// (a graceful stop: in-flight requests finish within the shutdown timeout). The handlers are
/// installed by this call, before the server announces its address: actix-web's own are only
/// installed when the server first runs, and a signal in between killed the process outright.
/// Needs the runtime the server will run on.
fn stop_signal() -> std::io::Result<impl std::future::Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut terminate, mut interrupt) = (signal(SignalKind::terminate())?, signal(SignalKind::interrupt())?);
    Ok(async move {
        tokio::select! {
            _ = terminate.recv() => tracing::info!("SIGTERM received; stopping"),
            _ = interrupt.recv() => tracing::info!("SIGINT received; stopping"),
        }
    })
}

/// How long shutdown waits for the HTTP workers to let go of the library.
const CLOSE_WAIT: Duration = Duration::from_secs(10);

/// Drops the library on this thread once nothing else holds it, so that RocksDB and the ONNX
/// Runtime sessions are closed before the process exits. actix-web's workers report that they
/// stopped before they drop their copy of the app, and one of them closing the library while
/// `exit` already tears down those C++ libraries can abort the process (the likely cause of one
/// "terminate called without an active exception" after SIGTERM in CI).
fn close(mut library: Arc<Library>) {
    let deadline = Instant::now() + CLOSE_WAIT;
    loop {
        match Arc::try_unwrap(library) {
            Ok(library) => return drop(library),
            Err(shared) if Instant::now() < deadline => {
                library = shared;
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(_) => return tracing::warn!("the library is still in use after {}s; exiting without closing it (its data is flushed)", CLOSE_WAIT.as_secs()),
        }
    }
}

#[cfg(test)]
mod tests {
    //! The routes in process, over a library with a model-free encoder: parse → library →
    //! serialize, and the one mapping of library errors to statuses.

    use actix_web::test;

    use super::*;

    fn library(writable: bool) -> (tempfile::TempDir, tempfile::TempDir, Arc<Library>) {
        let (photos, data, library) = crate::library::test_support::library_of_colours(&[("red.png", [220, 10, 10]), ("blue.png", [10, 10, 220])], writable);
        (photos, data, Arc::new(library))
    }

    fn open_access() -> AccessControl {
        AccessControl::open(None, Default::default(), true).unwrap()
    }

    fn options() -> ServeOptions {
        ServeOptions { bind: "127.0.0.1:0".parse().unwrap(), access: Default::default(), upload_limit: 1 << 20, watch: Vec::new(), workers: 1 }
    }

    #[actix_web::test]
    async fn routes_answer_through_the_library_and_its_errors_map_to_statuses() {
        let (_photos, _data, library) = library(true);
        let app = test::init_service(app(&Shared::new(library, &options(), open_access()))).await;

        let stats: serde_json::Value = test::call_and_read_body_json(&app, test::TestRequest::get().uri("/api/stats").to_request()).await;
        assert_eq!((stats["images"].as_u64(), stats["missing_embeddings"].as_u64()), (Some(2), Some(0)), "{stats}");

        let found: serde_json::Value = test::call_and_read_body_json(&app, test::TestRequest::get().uri("/api/search?q=type:png&k=5").to_request()).await;
        assert_eq!(found["results"].as_array().unwrap().len(), 2, "{found}");
        let id = found["results"][0]["id"].as_u64().unwrap();
        let similar: serde_json::Value = test::call_and_read_body_json(&app, test::TestRequest::get().uri(&format!("/api/images/{id}/similar?k=1")).to_request()).await;
        assert_eq!(similar["results"][0]["id"].as_u64(), Some(id), "an image is most similar to itself");

        for (uri, status, code) in [("/api/images/999", 404, "not_found"), ("/api/jobs/77", 404, "not_found"), ("/api/search?q=after:2020-13-01", 400, "bad_query")] {
            let res = test::call_service(&app, test::TestRequest::get().uri(uri).to_request()).await;
            assert_eq!(res.status().as_u16(), status, "{uri}");
            let body: serde_json::Value = test::read_body_json(res).await;
            assert_eq!(body["error"]["code"], code, "{uri}: {body}");
        }
    }

    #[actix_web::test]
    async fn a_reader_answers_409_to_an_indexing_request() {
        let (_photos, _data, library) = library(false);
        let app = test::init_service(app(&Shared::new(library, &options(), open_access()))).await;
        let res = test::call_service(&app, test::TestRequest::post().uri("/api/index").to_request()).await;
        assert_eq!(res.status().as_u16(), 409);
        let body: serde_json::Value = test::read_body_json(res).await;
        assert_eq!(body["error"]["code"], "read_only");
    }
}
