#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, then
# checks formatting and lints, then runs every unit and integration test
# (release profile: one RocksDB build serves tests, bench and the binary).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --release --all-targets -- -D warnings
cargo test --release --all-targets
