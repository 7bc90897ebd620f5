use std::io::Read;
use std::net::TcpListener;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use stockroom::config::Settings;
use stockroom::{router, server, telemetry};

/// Stockroom: inventory with expiry, customers, replenishment, files and chat.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve HTTP (the default).
    Serve {
        /// On an empty database, first create a demo store and print its logins.
        #[arg(long)]
        demo: bool,
    },
    /// Apply pending migrations and exit.
    Migrate,
    /// Add an owner account; the password is read from standard input.
    CreateOwner {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        /// Read the password from standard input (required, so it never shows in `ps`).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Print the OpenAPI document (regenerates openapi/openapi.json).
    Openapi,
}

fn main() -> ExitCode {
    stockroom::db::init_drivers();
    let cli = Cli::parse();
    if let Some(Command::Openapi) = cli.command {
        return match serde_json::to_string_pretty(&router::openapi()) {
            Ok(doc) => {
                println!("{doc}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("stockroom: {e}");
                ExitCode::FAILURE
            }
        };
    }
    let settings = match Settings::from_env() {
        Ok(s) => s,
        Err(e) => {
            eprintln!("stockroom: {e}");
            return ExitCode::from(2);
        }
    };
    telemetry::init_logging(settings.log_format);
    let result = actix_web::rt::System::new().block_on(async move {
        match cli.command.unwrap_or(Command::Serve { demo: false }) {
            Command::Serve { demo } => serve(settings, demo).await,
            Command::Migrate => migrate(settings).await,
            Command::CreateOwner {
                username, email, ..
            } => create_owner(settings, username, email).await,
            Command::Openapi => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("stockroom: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(settings: Settings, demo: bool) -> Result<(), String> {
    let bind = settings.bind;
    let listener = TcpListener::bind(bind).map_err(|e| format!("cannot bind {bind}: {e}"))?;
    let (server, state) = server::start(settings, listener)
        .await
        .map_err(|e| e.to_string())?;
    stockroom::bootstrap::on_start(&state, demo)
        .await
        .map_err(|e| e.to_string())?;
    tracing::info!(%bind, backend = ?state.settings.backend, "Stockroom is serving; API docs at /docs/");
    server.await.map_err(|e| e.to_string())
}

async fn migrate(settings: Settings) -> Result<(), String> {
    let state = stockroom::router::state(settings).map_err(|e| e.to_string())?;
    server::migrate(&state).await.map_err(|e| e.to_string())?;
    tracing::info!("migrations applied");
    Ok(())
}

async fn create_owner(settings: Settings, username: String, email: String) -> Result<(), String> {
    let mut password = String::new();
    std::io::stdin()
        .read_to_string(&mut password)
        .map_err(|e| format!("reading the password from stdin: {e}"))?;
    let password = password.trim_end_matches(['\n', '\r']).to_owned();
    let state =
        actix_web::web::Data::new(stockroom::router::state(settings).map_err(|e| e.to_string())?);
    server::migrate(&state).await.map_err(|e| e.to_string())?;
    let user = stockroom::bootstrap::create_owner(&state, username, email, password)
        .await
        .map_err(|e| e.to_string())?;
    println!("created owner {} (id {})", user.0, user.1);
    Ok(())
}
