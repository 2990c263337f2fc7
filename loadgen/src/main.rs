//! Load generator and benchmark harness for commerce.
//!
//! `loadgen run` drives one scenario against a running server; `loadgen bench` starts the
//! server itself on each backend and measures every scenario against the ceilings taken in the
//! same run, so the figures are ratios that survive a noisy machine.

mod api;
mod bench;
mod ceiling;
mod check;
mod cli;
mod database;
mod driver;
mod ledger;
mod plan;
mod report;
mod run;
mod scaling;
mod scenario;
mod server;
mod stats;
mod wal;

use clap::Parser;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let outcome = match cli::Cli::parse().command {
        cli::Command::Run(args) => run::run(args).await,
        cli::Command::Bench(args) => bench::bench(args).await,
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("\nINVARIANTS BROKEN: see the lines marked BROKEN above");
            ExitCode::from(2)
        }
        Err(error) => {
            eprintln!("loadgen: {error:#}");
            ExitCode::FAILURE
        }
    }
}
