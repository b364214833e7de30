//! The `rosetta` binary: parse the command line and hand over to the library.

use std::process::ExitCode;

/// mimalloc: the glibc allocator was about 30% of the instructions of a translated call
/// (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    rosetta::cli::run(rosetta::cli::Cli::from_process())
}
