#!/usr/bin/env bash
# Drives the demo the way operators and other services do: grpcurl through
# server reflection (no proto files), and a Python client generated from
# proto/ with grpcio-tools. Usage: smoke.sh PATH_TO_BINARY
set -euo pipefail
binary=$1
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
target="127.0.0.1:$port"

GATEWAY_LISTEN_ADDR=$target GATEWAY_METRICS_ADDR=127.0.0.1:0 GATEWAY_WEBHOOK_ADDR=127.0.0.1:0 RUST_LOG=warn \
  "$binary" demo >"$work/demo.out" 2>"$work/demo.err" &
demo_pid=$!
cleanup() { kill "$demo_pid" 2>/dev/null || true; wait "$demo_pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

fail() { echo "smoke: FAILED: $*" >&2; echo "--- demo stdout"; cat "$work/demo.out"; echo "--- demo stderr"; cat "$work/demo.err"; exit 1; }
expect() { # expect NAME PATTERN OUTPUT
  if grep -q -- "$2" <<<"$3"; then echo "ok: $1"; else echo "$3"; fail "$1: expected /$2/"; fi
}

for _ in $(seq 1 100); do
  if grpcurl -plaintext -max-time 1 -d '{"service":"esign.v1.InvitationService"}' "$target" grpc.health.v1.Health/Check 2>/dev/null | grep -q SERVING; then
    break
  fi
  sleep 0.1
done

expect "grpcurl list" "esign.v1.InvitationService" "$(grpcurl -plaintext "$target" list)"
expect "grpcurl list shows health" "grpc.health.v1.Health" "$(grpcurl -plaintext "$target" list)"
expect "grpcurl describe" "rpc BatchResendInvitations" "$(grpcurl -plaintext "$target" describe esign.v1.InvitationService)"
expect "grpcurl health" '"SERVING"' "$(grpcurl -plaintext -d '{"service":"esign.v1.InvitationService"}' "$target" grpc.health.v1.Health/Check)"

delivered=$(grep -o 'adi_[a-z0-9]*' "$work/demo.out" | sed -n 3p)
resendable=$(grep -o 'adi_[a-z0-9]*' "$work/demo.out" | sed -n 1p)
[ -n "$delivered" ] || fail "the demo printed no Bynn token"
out=$(grpcurl -plaintext -d "{\"provider\":\"PROVIDER_BYNN\",\"invitation_id\":\"$delivered\"}" \
  "$target" esign.v1.InvitationService/ResendInvitation 2>&1 || true)
expect "grpcurl decodes ErrorInfo" '"reason":"INVITATION_NOT_RESENDABLE"' "$out"
expect "grpcurl shows the code" "FailedPrecondition" "$out"
out=$(grpcurl -plaintext -d '{"provider":"PROVIDER_BYNN","document_id":"d"}' \
  "$target" esign.v1.InvitationService/GetDocument 2>&1 || true)
expect "grpcurl: unsupported RPC is UNIMPLEMENTED with ErrorInfo" '"reason":"UNSUPPORTED_BY_PROVIDER"' "$out"

# Events, as the demo tells a newcomer: watch, make the signer sign, see it.
# The examples watch too, each keeping its cursor in a file.
sign=$(grep -o 'curl -X POST http://[^ ]*/sign' "$work/demo.out" || true)
[ -n "$sign" ] || fail "the demo printed no signing command"
python_example="python3 $root/examples/python/esign_example.py $target"
node_example="node $root/examples/node/dist/example.js $target"
timeout 10 grpcurl -plaintext -d '{}' "$target" esign.v1.EventService/WatchEvents >"$work/events.out" 2>&1 &
watch_pid=$!
$python_example watch --cursor-file "$work/python.cursor" --events 1 --seconds 10 >"$work/python-watch.out" 2>&1 &
python_watch=$!
$node_example watch "$work/node.cursor" 1 10 >"$work/node-watch.out" 2>&1 &
node_watch=$!
for _ in $(seq 1 100); do
  grep -q 'watching from now' "$work/python-watch.out" && grep -q 'watching from now' "$work/node-watch.out" && break
  sleep 0.1
done
sleep 0.5
$sign >/dev/null 2>&1
for _ in $(seq 1 50); do
  grep -q 'document.fieldinvite.signed' "$work/events.out" && break
  sleep 0.1
done
kill "$watch_pid" 2>/dev/null || true
expect "WatchEvents shows the signature" '"providerEvent": "document.fieldinvite.signed"' "$(cat "$work/events.out")"
wait "$python_watch" || fail "python example watch: $(cat "$work/python-watch.out")"
wait "$node_watch" || fail "node example watch: $(cat "$work/node-watch.out")"
expect "python example sees the signature" "event EVENT_TYPE_INVITATION_STATE_CHANGED document.fieldinvite.signed" "$(cat "$work/python-watch.out")"
expect "node example sees the signature" "event EVENT_TYPE_INVITATION_STATE_CHANGED document.fieldinvite.signed" "$(cat "$work/node-watch.out")"
# Restarted with their cursors, both resume after the signature: the next
# event is the document's completion, which arrived while neither watched.
out=$($python_example watch --cursor-file "$work/python.cursor" --events 1 --seconds 10 2>&1) || fail "python example resume: $out"
expect "python example resumes from its cursor" "event EVENT_TYPE_DOCUMENT_STATE_CHANGED document.complete" "$out"
out=$($node_example watch "$work/node.cursor" 1 10 2>&1) || fail "node example resume: $out"
expect "node example resumes from its cursor" "event EVENT_TYPE_DOCUMENT_STATE_CHANGED document.complete" "$out"

for example in "$python_example" "$node_example"; do
  out=$($example send 2>&1) || fail "$example send: $out"
  expect "$example: sends with a request_id" "sent adi_" "$out"
  expect "$example: a retry with the same request_id replays" "retried with the same request_id: adi_.* (same: [Tt]rue)" "$out"
  expect "$example: decodes ErrorInfo and BadRequest" "INVALID_ARGUMENT INVALID_FIELD" "$out"
  expect "$example: names the field" "field signers\[0\].email" "$out"
done

# The chart's dashboard and alert rules query only metrics the demo exports.
metrics=$(grep -o 'metrics and health on http://[^ ]*' "$work/demo.out" | sed 's/.* on //')
[ -n "$metrics" ] || fail "the demo printed no metrics address"
python3 "$root/scripts/check_metric_names.py" "$metrics" || fail "dashboard or rules query unknown metrics"

mkdir -p "$work/gen"
python3 -m grpc_tools.protoc -I "$root/proto" --python_out="$work/gen" --grpc_python_out="$work/gen" \
  "$root/proto/esign/v1/invitation_service.proto"
PYTHONPATH="$work/gen" python3 "$here/client.py" "$target" "$resendable" "$delivered"
echo "smoke: all checks passed"
