#![forbid(unsafe_code)]

// Most of a call's gateway-side cost is small short-lived allocations
// (headers, bodies, futures); mimalloc serves them markedly cheaper than
// glibc's malloc (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    esign_gateway::cli::main()
}
