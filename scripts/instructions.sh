#!/usr/bin/env bash
# Instructions the gateway executes per ResendInvitation call, counted by
# callgrind: repeatable whatever else the machine does, unlike CPU time (see
# BENCHMARKS.md, "Instructions per call"). User space only: the kernel's
# share (about a third of the CPU) is not in it.
#
#   scripts/instructions.sh [GATEWAY]   # default: target/release/esign-gateway
#   scripts/instructions.sh --naive     # the naive bridge (scenario N) instead
#
# How: esign-bench runs GATEWAY under valgrind in N's place (--n-gateway), one
# quick round. callgrind's counters are dumped every second while it runs
# (the benchmark kills the gateway at the end, and a killed process writes
# nothing). Each dump that saw calls counts: its instructions over the calls
# of `Metrics::rpc_finished`, which runs once per answered call.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)" >&2; exit 1; }
cargo build --release --locked --features bench --bin esign-bench --bin esign-naive-bridge
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# esign-bench clears the environment of the servers it starts, so the
# wrapper names its paths itself.
if [ "${1:-}" = --naive ]; then
    # Started as a gateway would be; the bridge takes the same settings as
    # arguments. Counted: its handler's future, dropped once per call.
    counted="core::ptr::drop_in_place<<esign_naive_bridge::NaiveBridge as esign_gateway::pb::invitation_service_server::InvitationService>::resend_invitation::{{closure}}>"
    cat >"$work/gateway" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file=$work/callgrind.%p.out \
    "$(realpath target/release/esign-naive-bridge)" --port "\${GATEWAY_LISTEN_ADDR##*:}" \
    --leegality-base-url "\$LEEGALITY_BASE_URL" --token "\$LEEGALITY_AUTH_TOKEN"
EOF
else
    gateway="$(realpath "${1:-target/release/esign-gateway}")"
    counted="esign_gateway::metrics::Metrics::rpc_finished"
    cat >"$work/gateway" <<EOF
#!/bin/sh
exec valgrind --tool=callgrind --callgrind-out-file=$work/callgrind.%p.out "$gateway" "\$@"
EOF
fi
chmod +x "$work/gateway"
target/release/esign-bench --quick --rounds 1 --duration 5 --warmup 1 \
    --n-gateway "$work/gateway" --json "$work/report.json" >"$work/bench.log" 2>&1 &
bench=$!
while kill -0 "$bench" 2>/dev/null; do
    pid="$(pgrep -f "callgrind-out-file=$work/" | head -1 || true)"
    if [ -n "$pid" ]; then callgrind_control -d "$pid" >/dev/null 2>&1 || true; fi
    sleep 1
done
wait "$bench" || { cat "$work/bench.log" >&2; exit 1; }
python3 - "$work" "$counted" <<'EOF'
import glob, re, sys

COUNTED = sys.argv[2]
instructions = calls = 0
for path in glob.glob(f"{sys.argv[1]}/callgrind.*.out*"):
    names, total, seen, callee = {}, None, 0, None
    for line in open(path, errors="replace"):
        if line.startswith(("summary:", "totals:")):
            total = int(line.split()[1])
            continue
        named = re.match(r"^c?fn=\((\d+)\)(?: (.*))?$", line.rstrip("\n"))
        if named:
            if named.group(2):
                names[named.group(1)] = named.group(2)
            if line.startswith("cfn="):
                callee = names.get(named.group(1))
            continue
        if line.startswith("calls=") and callee == COUNTED:
            seen += int(line[6:].split()[0])
    if total and seen:
        instructions += total
        calls += seen
if not calls:
    sys.exit("no calls were counted")
print(f"{calls} calls, {instructions / calls:,.0f} instructions per call")
EOF
