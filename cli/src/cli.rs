//! Command-line interface.

use crate::admin::AdminArgs;
use clap::{Parser, Subcommand};
use kura_gateway::ServeArgs;
use kura_provisioner::ProvisionerArgs;

#[derive(Debug, Parser)]
#[command(
    name = "kura",
    version,
    about = "Kura: an S3-compatible object gateway",
    long_about = "Kura serves the Amazon S3 API so that the aws CLI, the AWS SDKs, rclone and s3cmd \
                  work against it unchanged.\n\nStart it with `kura serve`; it prints its endpoint and \
                  credentials. Every flag has an environment variable (shown in brackets).\n\nManage \
                  users, access keys, buckets and quotas with `kura admin`; give Kubernetes \
                  workloads buckets through ObjectBucketClaims with `kura provisioner`."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the S3 server (single node, data in a local directory).
    Serve(ServeArgs),
    // The help texts of `admin` are AdminArgs' own (a doc comment here would replace them).
    Admin(AdminArgs),
    Provisioner(ProvisionerArgs),
}

pub fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    match cli.command {
        Command::Serve(args) => {
            init_tracing();
            kura_gateway::serve(args)
        }
        Command::Admin(args) => crate::admin::run(args),
        Command::Provisioner(args) => {
            init_tracing();
            kura_provisioner::run(args)
        }
    }
}

/// Logs to stderr, filtered by `KURA_LOG` (default `info`).
fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KURA_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        // clap's own checks: unique argument names (a subcommand argument must not
        // shadow a global flag), valid defaults, groups, …
        Cli::command().debug_assert();
    }

    #[test]
    fn the_reshard_share_is_a_percentage() {
        let share = |args: &[&str]| {
            Cli::try_parse_from([&["kura", "serve"], args].concat()).map(|cli| match cli.command {
                Command::Serve(serve) => serve.reshard_share,
                _ => unreachable!("parsed as serve"),
            })
        };
        assert_eq!(share(&[]).unwrap(), 25);
        assert_eq!(share(&["--reshard-share", "100"]).unwrap(), 100);
        assert!(share(&["--reshard-share", "0"]).is_err());
        assert!(share(&["--reshard-share", "101"]).is_err());
    }
}
