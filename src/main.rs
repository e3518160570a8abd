//! The `mdt-coordinator` command line: `serve` (default), `migrate`, `user add`,
//! `user deactivate | reactivate | reset-password`, `demo`, `audit verify`, `backup`,
//! `restore`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use mdt_coordinator::config::Settings;
use mdt_coordinator::domain::account::AccountChange;
use mdt_coordinator::routes::users::{change_account, create_account, ValidUser};
use mdt_coordinator::startup::Application;
use mdt_coordinator::state::AppState;
use mdt_coordinator::store::blobs::Blobs;
use mdt_coordinator::{demo, domain, store, telemetry};

#[derive(Parser)]
#[command(
    name = "mdt-coordinator",
    version,
    about = "Virtual MDT meetings for musculoskeletal care"
)]
struct Cli {
    /// Settings file layered over the built-in defaults (also MDT_CONFIG).
    #[arg(long, global = true, env = "MDT_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the API, live channel and web front end (the default).
    Serve {
        /// Seed demo accounts and sessions first if the database has no accounts.
        #[arg(long)]
        demo: bool,
    },
    /// Run database migrations and exit.
    Migrate,
    /// Manage accounts.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Seed an empty database with demo data and print the demo logins.
    Demo,
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Copy the SQLite database and its attachments, consistently, while the service runs.
    Backup {
        /// The backup file to create (refused if it exists).
        #[arg(long)]
        to: PathBuf,
    },
    /// Bring a backup back as the configured SQLite database and attachment folder (stop
    /// the service first); its audit chain is verified before anything is replaced.
    Restore {
        /// The backup file made by `backup`.
        #[arg(long)]
        from: PathBuf,
        /// Replace an existing database and add to an existing attachment folder.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk the hash chain; exit non-zero if any row was changed or removed.
    Verify,
}

#[derive(Subcommand)]
enum UserCommand {
    /// Create an account; the password is read from standard input.
    Add {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: String,
        #[arg(long)]
        role: String,
        /// Repeat for several specialties.
        #[arg(long = "specialty")]
        specialties: Vec<String>,
        /// Read the password from standard input (required: never pass it as an argument).
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Deactivate an account: sign-in refused, sign-ins ended, live connections closed.
    Deactivate {
        #[arg(long)]
        email: String,
    },
    /// Reactivate a deactivated account.
    Reactivate {
        #[arg(long)]
        email: String,
    },
    /// Set a one-time password (printed once) the person must change at next sign-in.
    ResetPassword {
        #[arg(long)]
        email: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result =
        Settings::load(cli.config.as_deref()).map_err(anyhow::Error::from).and_then(|settings| {
            telemetry::init(&settings.log);
            let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
            runtime.block_on(run(cli.command.unwrap_or(Command::Serve { demo: false }), settings))
        });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, settings: Settings) -> anyhow::Result<()> {
    match command {
        Command::Migrate => {
            let store = store::connect(&settings.database).await?;
            println!("migrations applied ({})", store.backend());
            Ok(())
        }
        Command::Audit { command: AuditCommand::Verify } => {
            let store = store::connect(&settings.database).await?;
            let report = store.verify_audit().await?;
            match report.first_broken_seq {
                None => {
                    println!("audit chain intact: {} events", report.rows_checked);
                    Ok(())
                }
                Some(seq) => anyhow::bail!(
                    "audit chain broken at event {seq} ({} events checked)",
                    report.rows_checked
                ),
            }
        }
        Command::Backup { to } => {
            let blobs = Blobs::new(&settings.data.dir)?;
            let done = store::backup::backup(&settings.database, &blobs, &to).await?;
            println!(
                "backed up to {}: {} audit events, {} attachments ({} bytes)",
                to.display(),
                done.audit_events,
                done.attachments,
                done.bytes
            );
            Ok(())
        }
        Command::Restore { from, force } => {
            let blobs = Blobs::new(&settings.data.dir)?;
            let done = store::backup::restore(&settings.database, &blobs, &from, force).await?;
            println!(
                "restored {} from {}: audit chain intact ({} events), {} attachments in {}",
                done.database.display(),
                from.display(),
                done.audit_events,
                done.attachments,
                blobs.root().display()
            );
            Ok(())
        }
        Command::Demo => {
            let store = store::connect(&settings.database).await?;
            let state = AppState::new(settings, store)?;
            print_demo(demo::seed(&state).await?);
            Ok(())
        }
        Command::User {
            command: UserCommand::Add { email, name, role, specialties, password_stdin: _ },
        } => {
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password)?;
            let password = password.trim_end_matches(['\r', '\n']);
            let valid = ValidUser {
                email: domain::EmailAddress::parse(&email)?,
                name: domain::PersonName::parse(&name)?,
                role: role.parse()?,
                specialties: specialties
                    .iter()
                    .map(|s| domain::Specialty::parse(s))
                    .collect::<Result<_, _>>()?,
                organisation: None,
                password: domain::Password::parse(password)?,
            };
            let store = store::connect(&settings.database).await?;
            let state = AppState::new(settings, store)?;
            let user = create_account(&state, valid, None, None)
                .await
                .map_err(|e| anyhow::anyhow!("{e}"))?;
            println!("created {} {} ({})", user.role, user.email, user.id);
            Ok(())
        }
        Command::User { command: UserCommand::Deactivate { email } } => {
            lifecycle(settings, &email, AccountChange::Deactivate).await
        }
        Command::User { command: UserCommand::Reactivate { email } } => {
            lifecycle(settings, &email, AccountChange::Reactivate).await
        }
        Command::User { command: UserCommand::ResetPassword { email } } => {
            lifecycle(settings, &email, AccountChange::ResetPassword).await
        }
        Command::Serve { demo } => {
            let store = store::connect(&settings.database).await?;
            let app = Application::with_store(settings.clone(), store)?;
            let url = format!("http://{}:{}", settings.http.host, app.port());
            if demo {
                print_demo(demo::seed(&app.state()).await?);
            }
            println!("MDT Coordinator listening on {url}");
            tracing::info!(%url, backend = app.state().store.backend(), "listening");
            app.run_until_stopped().await?;
            tracing::info!("stopped");
            Ok(())
        }
    }
}

/// `user deactivate | reactivate | reset-password --email E`: the API's account change,
/// audited with no actor (the operator's command line). A running server's rooms close a
/// deactivated account's live connections on their next housekeeping tick.
async fn lifecycle(settings: Settings, email: &str, change: AccountChange) -> anyhow::Result<()> {
    let email = domain::EmailAddress::parse(email)?;
    let store = store::connect(&settings.database).await?;
    let Some(credentials) = store.credentials(&email).await? else {
        anyhow::bail!("no account with the email {email}");
    };
    let state = AppState::new(settings, store)?;
    let (user, once) = change_account(&state, None, credentials.user_id, change, None)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    match (change, once) {
        (AccountChange::Deactivate, _) => println!("deactivated {} ({})", user.email, user.id),
        (AccountChange::Reactivate, _) => println!("reactivated {} ({})", user.email, user.id),
        (AccountChange::ResetPassword, Some(once)) => println!(
            "one-time password for {} (to be changed at next sign-in): {}",
            user.email,
            once.expose()
        ),
        (AccountChange::ResetPassword, None) => anyhow::bail!("no one-time password was made"),
    }
    Ok(())
}

fn print_demo(logins: Option<Vec<demo::DemoLogin>>) {
    match logins {
        Some(logins) => {
            println!("Demo logins (password for all: {}):", demo::DEMO_PASSWORD);
            for l in logins {
                println!("  {:<13} {}", l.role.as_str(), l.email);
            }
        }
        None => println!("The database already has accounts; demo data not added."),
    }
}
