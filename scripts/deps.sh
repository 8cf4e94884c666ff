#!/usr/bin/env bash
# Install what building and testing ruvector-storage needs on Debian/Ubuntu:
# clang + libclang-dev for the RocksDB bindings (bindgen), systemd-analyze
# promtool (Debian package prometheus) and openssl for tests. Idempotent.
set -euo pipefail
need=()
command -v clang >/dev/null 2>&1 || need+=(clang)
dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)
# systemd-analyze, for the unit-file test; promtool, for the metrics test
command -v systemd-analyze >/dev/null 2>&1 || need+=(systemd)
command -v promtool >/dev/null 2>&1 || need+=(prometheus)
# openssl, for the TLS test (it makes a CA and a server certificate)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "installing ${need[*]}" >&2
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
