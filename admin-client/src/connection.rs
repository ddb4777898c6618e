//! Where the admin API is and who calls it: the connection flags shared by `kura admin`
//! and `kura provisioner`, with their documented environment fallbacks.

use std::path::PathBuf;

use clap::Args;

use crate::client::{AdminError, Client, Credentials};

/// Where `kura admin` connects when nothing else is set.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:9000";

#[derive(Debug, Args)]
#[command(next_help_heading = "Connection")]
pub struct Connection {
    /// The server's S3 endpoint [fallback: $AWS_ENDPOINT_URL, then http://127.0.0.1:9000].
    #[arg(long, global = true, env = "KURA_ADMIN_ENDPOINT", value_name = "URL")]
    pub endpoint: Option<String>,

    /// Root access key [fallback: $KURA_ROOT_ACCESS_KEY, then $AWS_ACCESS_KEY_ID].
    #[arg(
        long,
        global = true,
        env = "KURA_ADMIN_ACCESS_KEY",
        hide_env_values = true
    )]
    pub access_key: Option<String>,

    /// Root secret key [fallback: $KURA_ROOT_SECRET_KEY, then $AWS_SECRET_ACCESS_KEY].
    #[arg(
        long,
        global = true,
        env = "KURA_ADMIN_SECRET_KEY",
        hide_env_values = true
    )]
    pub secret_key: Option<String>,

    /// Region to sign for: the server's --region.
    #[arg(long, global = true, env = "KURA_REGION", default_value = "us-east-1")]
    pub region: String,

    /// PEM file of CA certificates to trust for an https endpoint, besides the system's
    /// [fallback: $AWS_CA_BUNDLE].
    #[arg(long, global = true, env = "KURA_ADMIN_CA_BUNDLE", value_name = "FILE")]
    pub ca_bundle: Option<PathBuf>,
}

impl Connection {
    /// The endpoint, with its fallbacks.
    pub fn endpoint(&self) -> String {
        first_set(&self.endpoint, &["AWS_ENDPOINT_URL"])
            .unwrap_or_else(|| DEFAULT_ENDPOINT.to_owned())
    }

    pub fn region(&self) -> &str {
        &self.region
    }

    /// The client for these settings, with the documented environment fallbacks.
    pub fn client(&self) -> Result<Client, AdminError> {
        let endpoint = self.endpoint();
        let access_key = first_set(
            &self.access_key,
            &["KURA_ROOT_ACCESS_KEY", "AWS_ACCESS_KEY_ID"],
        );
        let secret_key = first_set(
            &self.secret_key,
            &["KURA_ROOT_SECRET_KEY", "AWS_SECRET_ACCESS_KEY"],
        );
        let credentials = match (access_key, secret_key) {
            (Some(access_key), Some(secret_key)) => Some(Credentials {
                access_key,
                secret_key,
            }),
            (None, None) => None,
            (Some(_), None) => missing("an access key was given without its secret key"),
            (None, Some(_)) => missing("a secret key was given without its access key"),
        };
        let ca_bundle = self
            .ca_bundle
            .clone()
            .or_else(|| env_var("AWS_CA_BUNDLE").map(PathBuf::from));
        Client::new(&endpoint, &self.region, credentials, ca_bundle.as_deref())
    }
}

/// The flag's value, else the first of the `fallbacks` environment variables that is set.
fn first_set(flag: &Option<String>, fallbacks: &[&str]) -> Option<String> {
    flag.clone()
        .filter(|v| !v.is_empty())
        .or_else(|| fallbacks.iter().find_map(|name| env_var(name)))
}

/// An environment variable, unless unset or empty.
fn env_var(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A usage error: clap's message and exit status 2.
fn missing(message: &str) -> ! {
    clap::Error::raw(
        clap::error::ErrorKind::MissingRequiredArgument,
        format!("{message} (see `kura admin --help`)\n"),
    )
    .exit()
}
