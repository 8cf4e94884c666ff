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
# openssl, for the TLS test (it makes a CA and a server certificate) and
# for creating Azurite containers (with curl)
command -v openssl >/dev/null 2>&1 || need+=(openssl)
command -v curl >/dev/null 2>&1 || need+=(curl)
command -v pip3 >/dev/null 2>&1 || command -v pip >/dev/null 2>&1 || need+=(python3-pip)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  echo "installing ${need[*]}" >&2
  $SUDO apt-get update -qq
  $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
# S3 and Azure emulators for the backup tests (loopback only; the tests
# start and stop them): moto_server (PyPI moto[server]) and Azurite 3.35.0
# (the last release for Node 20).
if ! command -v moto_server >/dev/null 2>&1; then
  echo "installing moto[server]" >&2
  PIP=$(command -v pip3 || command -v pip)
  "$PIP" install -q 'moto[server]' 2>/dev/null || "$PIP" install -q --break-system-packages 'moto[server]'
  command -v pyenv >/dev/null 2>&1 && pyenv rehash || true
fi
if ! command -v azurite-blob >/dev/null 2>&1; then
  echo "installing azurite@3.35.0" >&2
  npm install -g --silent azurite@3.35.0 >/dev/null
fi
