#!/usr/bin/env bash
# The benchmark (see BENCHMARKS.md): builds the release binaries, then runs
# bare tonic, the gateway and direct HTTP side by side, the scale run and the
# overload run. Extra arguments go to esign-bench (e.g. --duration 20).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --locked --features bench --bins
# The scale run holds 2,000 client and 2,000 provider connections.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
exec target/release/esign-bench --json target/bench/report.json "$@"
