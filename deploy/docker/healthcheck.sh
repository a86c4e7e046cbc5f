#!/bin/bash
# Docker HEALTHCHECK of the gigapath image: GET /health on the first address `serve` listens on (its --urls, which
# entrypoint.sh always sets; a wildcard host is asked on 127.0.0.1), with bash's /dev/tcp, so the image needs no curl.
# A container that runs another command (`run`, `embed-tiles`, ...) has no HTTP server and counts as healthy.
set -u
mapfile -d '' -t argv </proc/1/cmdline
[ "${argv[1]:-}" = serve ] || exit 0
url="${GIGAPATH_URLS:-http://0.0.0.0:8080}"
for ((i = 2; i < ${#argv[@]}; i++)); do
  case "${argv[i]}" in
    --urls) url="${argv[i + 1]:-$url}" ;;
    --urls=*) url="${argv[i]#--urls=}" ;;
  esac
done
url="${url%%;*}"
hostport="${url#*://}"; hostport="${hostport%%/*}"
port="${hostport##*:}"; host="${hostport%:*}"
host="${host#[}"; host="${host%]}"
case "$host" in "" | 0.0.0.0 | "*" | + | :: | localhost) host=127.0.0.1 ;; esac
exec 3<>"/dev/tcp/$host/$port" || exit 1
printf 'GET /health HTTP/1.0\r\nHost: %s\r\n\r\n' "$host" >&3
read -r -t 4 status <&3 || exit 1
case "$status" in "HTTP/1."?" 200"*) exit 0 ;; *) exit 1 ;; esac
