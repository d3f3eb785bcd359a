//! The `ferry` binary: parse the command line, hand over, map errors to exit codes.

fn main() -> std::process::ExitCode {
    ferry::cli::main()
}
