//! `kura`: one binary for the S3 server (`serve`), the admin CLI (`admin`) and the
//! Kubernetes bucket provisioner (`provisioner`), each built from its own library crate.

mod admin;
mod cli;

use clap::Parser;

fn main() -> std::process::ExitCode {
    kura_backend::limit_malloc_arenas();
    match cli::run(cli::Cli::parse()) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kura: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
