//! The `rosetta` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    rosetta::cli::run(rosetta::cli::Cli::parse())
}
