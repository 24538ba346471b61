//! `mqtt`: a command-line MQTT client. `mqtt pub`, `mqtt sub` and `mqtt rr` take the flags
//! of mosquitto_pub, mosquitto_sub and mosquitto_rr with their meanings, print the same
//! bytes, and exit with the same codes; see the README's section on the command-line
//! client for what differs.
#![forbid(unsafe_code)]
#![warn(missing_docs, unreachable_pub)]

mod args;
mod connection;
mod output;
mod properties;
mod publish;
mod request;
mod subscribe;
mod time;
mod trace;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// A command-line MQTT client with mosquitto_pub's, mosquitto_sub's and mosquitto_rr's
/// flags. `-h` is the host; `--help` prints this.
#[derive(Debug, Parser)]
#[command(
    name = "mqtt",
    disable_help_flag = true,
    disable_version_flag = true,
    disable_help_subcommand = true,
    subcommand_required = true,
    args_override_self = true
)]
struct Cli {
    /// Print help.
    #[arg(long, action = clap::ArgAction::Help)]
    help: Option<bool>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Publish one message, a file, stdin, or stdin line by line (as mosquitto_pub).
    Pub(publish::PubArgs),
    /// Subscribe and print what arrives (as mosquitto_sub).
    Sub(subscribe::SubArgs),
    /// Publish a request and print the first response (as mosquitto_rr).
    Rr(request::RrArgs),
}

/// Why the program stops before it is done: the line for stderr (none when already
/// said) and the exit status.
#[derive(Debug)]
pub(crate) struct Exit {
    code: u8,
    message: Option<String>,
    /// Said even under `--quiet` (a mistake in the command line, as mosquitto does).
    always: bool,
}

impl Exit {
    /// A mistake in the command line: exit status 1, said even under `--quiet`.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            code: 1,
            message: Some(message.into()),
            always: true,
        }
    }

    /// A failure while running, with its exit status.
    pub(crate) fn runtime(code: u8, message: impl Into<String>) -> Self {
        Self {
            code,
            message: Some(message.into()),
            always: false,
        }
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // mosquitto's programs print their usage on stdout and exit with 1 for --help
            // as for any mistake in the command line.
            let _ = e.print();
            return ExitCode::from(1);
        }
    };
    let quiet = match &cli.command {
        Command::Pub(a) => a.connection.quiet,
        Command::Sub(a) => a.connection.quiet,
        Command::Rr(a) => a.connection.quiet,
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("Error: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Pub(a) => publish::run(a).await,
            Command::Sub(a) => subscribe::run(a).await,
            Command::Rr(a) => request::run(a).await,
        }
    });
    // Nothing left to wait for: a stdin reader blocked in read() must not hold the exit.
    runtime.shutdown_background();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(exit) => {
            if let Some(m) = exit.message
                && (exit.always || !quiet)
            {
                eprintln!("{m}");
            }
            ExitCode::from(exit.code)
        }
    }
}
