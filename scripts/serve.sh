#!/usr/bin/env bash
# Run the daemon on the embedded default: data in ./ruvector-data,
# JSON-RPC on 127.0.0.1:7411. Extra arguments go to `serve`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
"$root/scripts/deps.sh"
exec cargo run --release --manifest-path "$root/Cargo.toml" -- serve "$@"
