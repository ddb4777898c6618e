//! `kura`: one binary for the S3 server (`serve`), the admin CLI (`admin`) and the
//! Kubernetes bucket provisioner (`provisioner`), each built from its own library crate.

mod admin;
mod cli;

use clap::Parser;

/// jemalloc, tuned in `.cargo/config.toml`: with glibc's malloc, memory freed during a
/// reshard stayed resident as fragments and a gateway's footprint grew with bucket size.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
