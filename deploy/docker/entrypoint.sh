#!/bin/sh
# Entry point of the gigapath image: runs `gigapath "$@"` as PID 1 (exec, so SIGTERM from `docker stop` or Kubernetes
# reaches the .NET host, which drains the requests in flight). For `serve` without --urls / --model it adds
# --urls "$GIGAPATH_URLS" and --model "$GIGAPATH_MODEL" (set in the Dockerfile; override with -e or the pod's env).
set -eu
if [ "${1:-}" = serve ]; then
  has_urls=0; has_model=0
  for a in "$@"; do
    case "$a" in
      --urls|--urls=*) has_urls=1 ;;
      --model|--model=*) has_model=1 ;;
    esac
  done
  shift
  if [ "$has_model" = 0 ]; then set -- --model "${GIGAPATH_MODEL:-/models/tile}" "$@"; fi
  if [ "$has_urls" = 0 ]; then set -- --urls "${GIGAPATH_URLS:-http://0.0.0.0:8080}" "$@"; fi
  set -- serve "$@"
fi
exec /opt/gigapath/GigaPath.Cli "$@"
