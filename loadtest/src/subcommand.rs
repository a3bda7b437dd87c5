//! What every `loadtest` subcommand does with its arguments first.
use std::ffi::OsString;
use std::process::ExitCode;

use clap::Parser;

/// Parse a subcommand's `args` (starting with its name), or the exit code after clap printed
/// the error or the help.
pub fn parse<T: Parser>(args: impl IntoIterator<Item = OsString>) -> Result<T, ExitCode> {
    T::try_parse_from(args).map_err(|e| {
        let _ = e.print();
        if e.use_stderr() {
            ExitCode::FAILURE
        } else {
            ExitCode::SUCCESS
        }
    })
}
