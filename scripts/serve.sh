#!/usr/bin/env bash
# Run the daemon on the embedded default: data in ./ruvector-data (relative
# to where you run this), JSON-RPC on 127.0.0.1:7411. Extra arguments go to
# `serve`. Builds from the repository root so .cargo/config.toml (hardware
# CRC32C) applies and the build is shared with the test suite.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/deps.sh"
(cd "$root" && cargo build --release --bin ruvector-storage)
exec "$root/target/release/ruvector-storage" serve "$@"
