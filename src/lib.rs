//! The `caseflow` binary's library half: start-up wiring shared by `main` and the end-to-end
//! tests (so the tests run exactly what production runs).

use anyhow::Context;
use caseflow_app::settings::{LogFormat, LoggingSettings, RunMode};
use caseflow_app::{App, OffsetClock, Settings, SystemClock};
use caseflow_core::Clock;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use tracing_subscriber::EnvFilter;

/// Installs the global tracing subscriber: `RUST_LOG` if set, else `logging.filter`; human or
/// JSON lines on stderr. Safe to call twice (the second call does nothing).
pub fn init_telemetry(logging: &LoggingSettings) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&logging.filter));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match logging.format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
        LogFormat::Human => builder.try_init(),
    };
}

/// A running server.
#[derive(Debug)]
pub struct Running {
    /// The address it listens on.
    pub addr: SocketAddr,
    /// The shared application state (for tests that need to look behind the API).
    pub app: App,
    /// Where the separate metrics listener is, when `metrics.bind` is set.
    pub metrics_addr: Option<SocketAddr>,
    handle: actix_web::dev::ServerHandle,
    metrics_handle: Option<actix_web::dev::ServerHandle>,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
    shutdown: tokio::sync::watch::Sender<bool>,
    workers: Vec<tokio::task::JoinHandle<()>>,
}

impl Running {
    /// Waits until the server stops (on SIGINT/SIGTERM), then stops the background workers.
    pub async fn wait(self) -> anyhow::Result<()> {
        let served = self.task.await.context("server task failed")?.context("server failed");
        stop_workers(&self.shutdown, self.workers).await;
        served
    }

    /// Stops the server and its background workers gracefully.
    pub async fn stop(self) {
        if let Some(m) = &self.metrics_handle {
            m.stop(true).await;
        }
        self.handle.stop(true).await;
        stop_workers(&self.shutdown, self.workers).await;
    }
}

/// Asks the workers to finish (a batch in flight is committed and acknowledged first) and
/// waits for them, at most ten seconds.
async fn stop_workers(shutdown: &tokio::sync::watch::Sender<bool>, workers: Vec<tokio::task::JoinHandle<()>>) {
    let _ = shutdown.send(true);
    let all = async {
        for w in workers {
            let _ = w.await;
        }
    };
    if tokio::time::timeout(std::time::Duration::from_secs(10), all).await.is_err() {
        tracing::warn!("background workers did not stop within 10 s");
    }
}

/// Opens the database (migrating it) and starts serving on `listener`.
pub async fn start(settings: Settings, listener: TcpListener) -> anyhow::Result<Running> {
    let clock = clock_of(&settings);
    start_with_clock(settings, listener, clock).await
}

/// [`start`] with an injected clock (tests that move time).
pub async fn start_with_clock(
    settings: Settings,
    listener: TcpListener,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Running> {
    let addr = listener.local_addr()?;
    let metrics_bind =
        (settings.metrics.enabled && !settings.metrics.bind.is_empty()).then(|| settings.metrics.bind.clone());
    let app = open_app_with_clock(settings, clock).await?;
    let (metrics_addr, metrics_handle) = match metrics_bind {
        Some(bind) => {
            let l = TcpListener::bind(&bind).with_context(|| format!("cannot listen for metrics on {bind}"))?;
            let a = l.local_addr()?;
            let server = caseflow_api::build_metrics_server(app.clone(), l)?;
            let h = server.handle();
            tokio::spawn(server);
            (Some(a), Some(h))
        }
        None => (None, None),
    };
    let server = caseflow_api::build_server(app.clone(), listener)?;
    let handle = server.handle();
    let task = tokio::spawn(server);
    spawn_housekeeping(app.clone());
    let (shutdown, shutdown_rx) = tokio::sync::watch::channel(false);
    let mut workers =
        caseflow_mail::spawn_workers(&app, shutdown_rx.clone()).context("cannot start the email workers")?;
    let router = app.clone();
    let rx = shutdown_rx.clone();
    workers.push(tokio::spawn(async move { router.run_router(rx).await }));
    let sla = app.clone();
    let rx = shutdown_rx.clone();
    workers.push(tokio::spawn(async move { sla.run_sla(rx).await }));
    let hooks = app.clone();
    let rx = shutdown_rx.clone();
    workers.push(tokio::spawn(async move { hooks.run_webhooks(rx).await }));
    let surveys = app.clone();
    let rx = shutdown_rx.clone();
    workers.push(tokio::spawn(async move { surveys.run_satisfaction(rx).await }));
    workers.extend(app.spawn_listener(shutdown_rx));
    Ok(Running { addr, app, metrics_addr, handle, metrics_handle, task, shutdown, workers })
}

/// Periodic clean-up that keeps tables from growing without bound.
fn spawn_housekeeping(app: App) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(300));
        loop {
            tick.tick().await;
            match app.purge_expired_idempotency_keys().await {
                Ok(n) if n > 0 => tracing::info!(purged = n, "expired idempotency keys deleted"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "idempotency key clean-up failed"),
            }
            match app.purge_old_webhook_deliveries().await {
                Ok(n) if n > 0 => tracing::info!(purged = n, "old webhook deliveries deleted"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "webhook delivery clean-up failed"),
            }
        }
    });
}

/// The clock `settings` ask for: the system's, shifted by `clock.offset_secs`.
pub fn clock_of(settings: &Settings) -> Arc<dyn Clock> {
    match settings.clock.offset_secs {
        0 => Arc::new(SystemClock),
        offset => Arc::new(OffsetClock(offset)),
    }
}

/// Builds the application state on a blocking thread (migrations may take a moment).
pub async fn open_app(settings: Settings) -> anyhow::Result<App> {
    let clock = clock_of(&settings);
    open_app_with_clock(settings, clock).await
}

/// [`open_app`] with an injected clock.
pub async fn open_app_with_clock(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<App> {
    tokio::task::spawn_blocking(move || App::open(settings, clock))
        .await
        .context("start-up task failed")?
        .map_err(|e| anyhow::anyhow!("cannot open the database: {e:?}"))
}

/// Seeds the demo data when the database has no agents. Returns whether it seeded.
pub async fn seed_demo_if_empty(app: &App) -> anyhow::Result<bool> {
    if app.settings().server.environment == RunMode::Production {
        anyhow::bail!("demo data is never seeded in production mode");
    }
    if !caseflow_app::demo::is_empty(app).await.map_err(|e| anyhow::anyhow!("{e}"))? {
        return Ok(false);
    }
    let password = app.settings().demo.password.expose().to_owned();
    caseflow_app::demo::seed(app, &password).await.map_err(|e| anyhow::anyhow!("demo seeding failed: {e:?}"))?;
    Ok(true)
}
