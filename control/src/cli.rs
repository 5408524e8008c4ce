//! The command line of CONTRACT.md.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Exit code: the command failed at run time.
pub const EXIT_RUNTIME: u8 = 1;
/// Exit code: bad usage or an invalid configuration.
pub const EXIT_USAGE: u8 = 2;

#[derive(Parser, Debug)]
#[command(
    name = "ferrowall",
    version,
    about = "A DPDK bump-in-the-wire firewall with FQDN rules"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start the appliance (foreground; logs to stderr).
    Run {
        /// The configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
    /// Validate a configuration: exit 0, or exit 2 printing FILE:LINE:COL: message.
    Check {
        /// The configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
    },
}

/// Errors a command ends with, mapped to exit codes.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// Invalid configuration or usage: exit 2.
    #[error("{0}")]
    Usage(String),
    /// Anything else: exit 1.
    #[error(transparent)]
    Runtime(#[from] anyhow::Error),
}

impl From<config::ConfigError> for Failure {
    fn from(e: config::ConfigError) -> Self {
        Failure::Usage(e.to_string())
    }
}

/// Parses the command line, runs the command, and returns the process's exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse(); // clap exits 2 on bad usage
    init_logging();
    let result = match cli.command {
        Command::Run { config } => crate::run::run(&config),
        Command::Check { config } => check(&config),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Usage(msg)) => {
            eprintln!("{msg}");
            ExitCode::from(EXIT_USAGE)
        }
        Err(Failure::Runtime(e)) => {
            eprintln!("ferrowall: {e:#}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

fn check(path: &std::path::Path) -> Result<(), Failure> {
    let cfg = config::load(path)?;
    eprintln!(
        "{}: ok ({} rules, default {})",
        path.display(),
        cfg.rules.len(),
        cfg.default.action.as_str()
    );
    Ok(())
}

fn init_logging() {
    use std::io::IsTerminal;
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
