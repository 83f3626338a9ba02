#![forbid(unsafe_code)]

fn main() -> std::process::ExitCode {
    esign_gateway::cli::main()
}
