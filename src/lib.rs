//! The `caseflow` binary's library half: start-up wiring shared by `main` and the end-to-end
//! tests (so the tests run exactly what production runs).

use anyhow::Context;
use caseflow_app::settings::{LogFormat, LoggingSettings, RunMode};
use caseflow_app::{App, Settings, SystemClock};
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
    handle: actix_web::dev::ServerHandle,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    /// Waits until the server stops (on SIGINT/SIGTERM).
    pub async fn wait(self) -> anyhow::Result<()> {
        self.task.await.context("server task failed")?.context("server failed")
    }

    /// Stops the server gracefully.
    pub async fn stop(self) {
        self.handle.stop(true).await;
    }
}

/// Opens the database (migrating it) and starts serving on `listener`.
pub async fn start(settings: Settings, listener: TcpListener) -> anyhow::Result<Running> {
    let addr = listener.local_addr()?;
    let app = open_app(settings).await?;
    let server = caseflow_api::build_server(app.clone(), listener)?;
    let handle = server.handle();
    let task = tokio::spawn(server);
    Ok(Running { addr, app, handle, task })
}

/// Builds the application state on a blocking thread (migrations may take a moment).
pub async fn open_app(settings: Settings) -> anyhow::Result<App> {
    tokio::task::spawn_blocking(move || App::open(settings, Arc::new(SystemClock)))
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
