use clap::Parser;

fn main() -> std::process::ExitCode {
    let cli = kura::cli::Cli::parse();
    match kura::cli::run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("kura: {err:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
