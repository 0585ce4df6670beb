//! `caseflow`: serve the product, migrate the database, seed demo data, administer agents.

use anyhow::Context;
use caseflow_app::auth::Scope;
use caseflow_app::directory::{NewAgent, NewApiToken};
use caseflow_app::settings::RunMode;
use caseflow_app::{Principal, Settings};
use caseflow_core::Role;
use clap::{Parser, Subcommand};
use std::io::BufRead;
use std::path::PathBuf;

#[derive(Parser)]
#[command(name = "caseflow", version, about = "Omnichannel support ticketing and case routing")]
struct Cli {
    /// Configuration file layered over config/default.toml (also CASEFLOW_CONFIG).
    #[arg(long, global = true, env = "CASEFLOW_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Apply migrations and serve the API (and, later, the UI and workers).
    Serve {
        /// Seed demo data when the database is empty and print the demo login.
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending database migrations and exit.
    Migrate,
    /// Seed demo data if the database is empty.
    Demo,
    /// Print the effective configuration (secrets redacted) and exit.
    CheckConfig,
    /// Receive one raw email from standard input (for an MTA pipe, like `rt-mailgate`).
    IngestEmail {
        /// Where the message came from, recorded with it.
        #[arg(long, default_value = "mta")]
        source: String,
    },
    /// Administrative tasks.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
}

#[derive(Subcommand)]
enum AdminCommand {
    /// Create a staff account. The password is read from standard input with
    /// --password-stdin, or generated and printed once.
    CreateAgent {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long, default_value = "agent", value_parser = ["admin", "supervisor", "agent"])]
        role: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Create an integrator API token and print it once.
    CreateToken {
        #[arg(long)]
        name: String,
        /// Comma-separated: read, write, admin.
        #[arg(long, default_value = "read,write")]
        scopes: String,
    },
}

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref()) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("caseflow: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    caseflow::init_telemetry(&settings.logging);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("caseflow: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command, settings)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("caseflow: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Serve { demo } => serve(settings, demo).await,
        Command::Migrate => {
            caseflow::open_app(settings).await?;
            println!("database is up to date");
            Ok(())
        }
        Command::Demo => {
            let app = caseflow::open_app(settings).await?;
            if caseflow::seed_demo_if_empty(&app).await? {
                println!(
                    "demo data seeded; log in as {} with the password in demo.password",
                    caseflow_app::demo::DEMO_ADMIN_EMAIL
                );
            } else {
                println!("the database already has agents; nothing seeded");
            }
            Ok(())
        }
        Command::IngestEmail { source } => {
            use std::io::Read;
            let mut raw = Vec::new();
            std::io::stdin().lock().read_to_end(&mut raw).context("cannot read the message from stdin")?;
            let app = caseflow::open_app(settings).await?;
            let r = app.receive_email(&Principal::System, source, raw).await.map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("{}", serde_json::to_string(&r)?);
            Ok(())
        }
        Command::CheckConfig => {
            println!("{settings:#?}");
            Ok(())
        }
        Command::Admin { command } => admin(settings, command).await,
    }
}

async fn serve(settings: Settings, demo: bool) -> anyhow::Result<()> {
    let addr = settings.bind_addr()?;
    let public_url = settings.server.public_url.clone();
    let dev = settings.server.environment == RunMode::Development;
    let demo_password = settings.demo.password.expose().to_owned();
    let listener = std::net::TcpListener::bind(addr).with_context(|| format!("cannot listen on {addr}"))?;
    let running = caseflow::start(settings, listener).await?;
    if demo && running.app.settings().demo.seed_when_empty && caseflow::seed_demo_if_empty(&running.app).await? {
        tracing::info!("demo data seeded into the empty database");
    }
    tracing::info!(addr = %running.addr, "caseflow is serving");
    println!("\nCaseflow is running at {public_url}  (API: {public_url}/api/v1, health: {public_url}/healthz)");
    println!("Agent inbox: {public_url}/app");
    if demo && dev {
        println!("Demo login: {} / {demo_password}   (other demo agents: alice@, bob@, chen@, dana@, sam.supervisor@caseflow.test)", caseflow_app::demo::DEMO_ADMIN_EMAIL);
        println!("  curl -s -X POST {public_url}/api/v1/auth/login -H 'Content-Type: application/json' \\");
        println!(
            "       -d '{{\"email\":\"{}\",\"password\":\"{demo_password}\"}}'",
            caseflow_app::demo::DEMO_ADMIN_EMAIL
        );
    }
    println!("Press Ctrl-C to stop.\n");
    running.wait().await
}

async fn admin(settings: Settings, command: AdminCommand) -> anyhow::Result<()> {
    let app = caseflow::open_app(settings).await?;
    match command {
        AdminCommand::CreateAgent { email, name, role, password_stdin } => {
            let role: Role = role.parse().map_err(|e| anyhow::anyhow!("{e}"))?;
            let (password, generated) = if password_stdin {
                let mut line = String::new();
                std::io::stdin().lock().read_line(&mut line).context("cannot read the password from stdin")?;
                (line.trim_end_matches(['\r', '\n']).to_owned(), false)
            } else {
                (caseflow_app::auth::generate_api_token()[4..24].to_owned(), true)
            };
            let agent = app
                .create_agent(
                    &Principal::System,
                    NewAgent { email, name, role, password: Some(password.clone()), team_id: None, max_load: None },
                )
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("created {} {} ({})", agent.role, agent.id, agent.email);
            if generated {
                println!("password: {password}");
            }
            Ok(())
        }
        AdminCommand::CreateToken { name, scopes } => {
            let scopes = scopes
                .split(',')
                .map(|s| Scope::parse(s.trim()))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            let t = app
                .create_api_token(&Principal::System, NewApiToken { name, scopes })
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("token {} created; it will not be shown again:\n{}", t.info.id, t.token);
            Ok(())
        }
    }
}
