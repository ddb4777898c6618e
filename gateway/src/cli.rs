//! Command-line interface.

use crate::config::ServeArgs;
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "kura",
    version,
    about = "Kura: an S3-compatible object gateway",
    long_about = "Kura serves the Amazon S3 API so that the aws CLI, the AWS SDKs, rclone and s3cmd \
                  work against it unchanged.\n\nStart it with `kura serve`; it prints its endpoint and \
                  credentials. Every flag has an environment variable (shown in brackets)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the S3 server (single node, data in a local directory).
    Serve(ServeArgs),
}

pub fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::Serve(args) => crate::server::run(args),
    }
}
