#!/usr/bin/env bash
# Create a blob container in Azurite (object_store cannot create containers).
# usage: azurite-mkcontainer.sh <blob-port> <container>
# Signs a "Create Container" request with Azurite's well-known
# devstoreaccount1 key (public; it only exists in the emulator).
set -euo pipefail
port=$1; c=$2; acct=devstoreaccount1
key='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
ver=2021-08-06; date=$(LC_ALL=C TZ=GMT date '+%a, %d %b %Y %H:%M:%S GMT')
hexkey=$(printf %s "$key" | base64 -d | od -An -v -tx1 | tr -d ' \n')
sts="PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:${date}\nx-ms-version:${ver}\n/${acct}/${acct}/${c}\nrestype:container"
sig=$(printf "$sts" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$hexkey" -binary | base64 -w0)
code=$(curl -s -o /dev/null -w '%{http_code}' -X PUT -H "Content-Length: 0" -H "x-ms-date: $date" \
  -H "x-ms-version: $ver" -H "Authorization: SharedKey ${acct}:${sig}" \
  "http://127.0.0.1:${port}/${acct}/${c}?restype=container")
[ "$code" = 201 ] || [ "$code" = 409 ] || { echo "creating container $c: HTTP $code" >&2; exit 1; }
