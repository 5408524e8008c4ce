//! The command line of CONTRACT.md.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::admin::proto::Request;

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
    /// Run the pipeline over a capture offline (no DPDK): verdicts, passing packets, FQDN table.
    Replay {
        /// The configuration file.
        #[arg(long, value_name = "FILE")]
        config: PathBuf,
        /// The capture to replay (classic pcap).
        #[arg(long, value_name = "IN.pcap")]
        pcap: PathBuf,
        /// Write the packets that pass, and those ferrowall writes (RSTs), here.
        #[arg(long, value_name = "OUT.pcap")]
        out: Option<PathBuf>,
        /// Write one JSON verdict per input packet here.
        #[arg(long, value_name = "VERDICTS.jsonl")]
        log: Option<PathBuf>,
        /// Write the FQDN table at the end here (format of `fqdn --json`).
        #[arg(long = "fqdn-out", value_name = "FQDN.json")]
        fqdn_out: Option<PathBuf>,
        /// Reload FILE before packet INDEX (0-based), as SIGHUP would: what a reload does to
        /// live flows. Repeatable.
        #[arg(long = "reload-at", value_name = "INDEX:FILE", value_parser = crate::replay::parse_reload)]
        reload_at: Vec<(u64, PathBuf)>,
    },
    /// The flows of a running instance.
    Flows {
        /// Print JSON (an array of flows) instead of a table.
        #[arg(long)]
        json: bool,
        /// Only flows an FQDN rule allowed for a name this domain pattern matches.
        #[arg(long, value_name = "PATTERN", value_parser = parse_pattern)]
        fqdn: Option<String>,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// The FQDN table of a running instance.
    Fqdn {
        /// Print JSON (an array of addresses) instead of a table.
        #[arg(long)]
        json: bool,
        /// Only addresses with a name this domain pattern matches.
        #[arg(long, value_name = "PATTERN", value_parser = parse_pattern)]
        pattern: Option<String>,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Counters of a running instance: ports, workers, drops, DNS learning.
    Stats {
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// The rules of a running instance with their counters.
    Rules {
        /// Print JSON (an array of rules) instead of a table.
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        socket: SocketArg,
    },
    /// Make a running instance re-read its configuration; prints the new generation or the
    /// error (the running policy then stays).
    Reload {
        #[command(flatten)]
        socket: SocketArg,
    },
}

/// Where a running instance listens.
#[derive(clap::Args, Debug)]
struct SocketArg {
    /// The admin socket ([admin].socket of its configuration).
    #[arg(long, value_name = "PATH", default_value = "/run/ferrowall/admin.sock")]
    socket: PathBuf,
}

fn parse_pattern(s: &str) -> Result<String, String> {
    s.parse::<config::DomainPattern>()
        .map(|_| s.to_owned())
        .map_err(|e| e.to_string())
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

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Runtime(e.into())
    }
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
        Command::Run { config } => {
            crate::run::restart_with_lazy_arenas();
            crate::run::run(&config)
        }
        Command::Check { config } => check(&config),
        Command::Replay {
            config,
            pcap,
            out,
            log,
            fqdn_out,
            reload_at,
        } => crate::replay::replay(&crate::replay::Args {
            config,
            pcap,
            out,
            log,
            fqdn_out,
            reloads: reload_at,
        }),
        Command::Flows { json, fqdn, socket } => {
            crate::admin::client::run(&socket.socket, &Request::Flows { fqdn }, json)
        }
        Command::Fqdn {
            json,
            pattern,
            socket,
        } => crate::admin::client::run(&socket.socket, &Request::Fqdn { pattern }, json),
        Command::Stats { json, socket } => {
            crate::admin::client::run(&socket.socket, &Request::Stats {}, json)
        }
        Command::Rules { json, socket } => {
            crate::admin::client::run(&socket.socket, &Request::Rules {}, json)
        }
        Command::Reload { socket } => {
            crate::admin::client::run(&socket.socket, &Request::Reload {}, false)
        }
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
