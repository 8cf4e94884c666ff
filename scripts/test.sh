#!/usr/bin/env bash
# The whole test suite on a fresh machine: installs what it needs, then
# checks formatting and lints, then runs every unit and integration test
# (release profile: one RocksDB build serves tests, bench and the binary).
# The tests are built with the `fault-injection` feature (crash points for
# the SIGKILL tests); `scripts/serve.sh` builds the binary without it.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
cargo fmt --all -- --check
cargo clippy --release --all-targets --features fault-injection -- -D warnings
cargo test --release --all-targets --features fault-injection
