#!/usr/bin/env bash
# Slow check of the container image (docs/deploy.md, "Check the image"): not part of `dotnet test` or .ci/run.
#
#   sudo deploy/test-image.sh [--fresh]
#
# 1. Installs what it lacks from Debian (docker.io, debootstrap, curl, python3-torch, python3-h5py) and starts
#    `dockerd --bridge=none --iptables=false` when no daemon answers (and stops it again at the end).
# 2. Builds a Debian 12 base image with debootstrap + `docker import` (no image registry is reachable here), unless it
#    is already there (--fresh rebuilds it), then the gigapath image on it with deploy/build-image.sh.
# 3. serve: /health, /ready, /score against the host's `embed-tiles` (1e-5), the API key, SIGTERM while requests are
#    in flight (all must answer 200, the container must exit 0), the container's RSS.
# 4. run on the bundled slide into a mounted folder as the invoking user: outputs equal to the host's run, owned by
#    that user; a second run skips the slide and changes no file.
# 5. Prints build time, image size, time to first /ready and the figures above.
#
# Network rule of the machines this runs on: containers only ever run with `--network host` (builds too), and the
# script talks to them on 127.0.0.1 only; the server is told to listen on 127.0.0.1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"

fresh=0
for a in "$@"; do
  case "$a" in
    --fresh) fresh=1 ;;
    -h | --help) sed -n '2,18p' "$0"; exit 0 ;;
    *) echo "test-image: unknown argument $a" >&2; exit 2 ;;
  esac
done

IMAGE="${IMAGE:-gigapath-native:test}"
BASE="${BASE:-gigapath-base:bookworm}"
MIRROR="${MIRROR:-http://deb.debian.org/debian}"
PY="${PYTHON:-/usr/bin/python3}"
work="$root/artifacts/image/test"
fixtures="$root/tests/GigaPath.Tests/Fixtures"
slide_dir="$fixtures/slides"
slide_id="CMU-1-Small-Region"
tile_model="$fixtures/tile_encoder_tiny"
demo="$root/weights/demo"
name="gigapath-test-$$"
[ "$(id -u)" = 0 ] || { echo "test-image: needs root (apt-get, dockerd, debootstrap): sudo $0" >&2; exit 2; }

say() { echo "test-image: $*" >&2; }
fail() { echo "test-image: FAILED: $*" >&2; exit 1; }
now() { date +%s.%N; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------------------------------------------------------- 1
need=()
command -v dockerd >/dev/null || need+=(docker.io)
command -v debootstrap >/dev/null || need+=(debootstrap)
command -v curl >/dev/null || need+=(curl)
"$PY" -c 'import torch, h5py, numpy' 2>/dev/null || need+=(python3-torch python3-h5py python3-numpy)
if [ ${#need[@]} -gt 0 ]; then
  say "installing ${need[*]} (apt-get)"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# Debian's client when it is there (the daemon is Debian's; another client on PATH may be newer).
DOCKER="${DOCKER:-$(command -v /usr/bin/docker || command -v docker)}"
export DOCKER

started_dockerd=""
containers=()
cleanup() {
  set +e
  for c in "${containers[@]}"; do "$DOCKER" rm -f "$c" >/dev/null 2>&1; done
  if [ -n "$started_dockerd" ]; then
    say "stopping the dockerd this script started (pid $started_dockerd)"
    kill -TERM "$started_dockerd"
    for _ in $(seq 1 100); do kill -0 "$started_dockerd" 2>/dev/null || break; sleep 0.2; done
  fi
}
trap cleanup EXIT
docker() { "$DOCKER" "$@"; }

if ! docker info >/dev/null 2>&1; then
  say "starting dockerd --bridge=none --iptables=false (log: $work/dockerd.log)"
  mkdir -p "$work"
  dockerd --bridge=none --iptables=false --ip6tables=false --ip-masq=false >"$work/dockerd.log" 2>&1 &
  started_dockerd=$!
  for _ in $(seq 1 150); do docker info >/dev/null 2>&1 && break; sleep 0.2; done
  docker info >/dev/null 2>&1 || { tail -20 "$work/dockerd.log" >&2; fail "dockerd did not start"; }
fi
say "docker: client $(docker version -f '{{.Client.Version}}'), daemon $(docker version -f '{{.Server.Version}}')"

# ---------------------------------------------------------------------------------------------------------------- 2
if [ "$fresh" = 1 ]; then docker rmi -f "$IMAGE" "$BASE" >/dev/null 2>&1 || true; fi
if ! docker image inspect "$BASE" >/dev/null 2>&1; then
  t=$(now)
  rootfs="$work/rootfs"
  rm -rf "$rootfs"; mkdir -p "$rootfs"
  say "debootstrap --variant=minbase bookworm from $MIRROR"
  debootstrap --variant=minbase bookworm "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 \
    || { tail -20 "$work/debootstrap.log" >&2; fail "debootstrap"; }
  # The sources of debian:bookworm-slim: the release, its updates and the security archive.
  security="${MIRROR%/debian}/debian-security"
  printf 'deb %s bookworm main\ndeb %s bookworm-updates main\ndeb %s bookworm-security main\n' \
    "$MIRROR" "$MIRROR" "$security" | tee "$rootfs/etc/apt/sources.list" >/dev/null
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log
  tar -C "$rootfs" --numeric-owner -c . \
    | docker import --change 'CMD ["/bin/bash"]' --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' - "$BASE" >/dev/null
  rm -rf "$rootfs"
  base_seconds=$(since "$t")
  say "base image $BASE built in $base_seconds s"
else
  base_seconds="reused"
  say "base image $BASE already there (--fresh rebuilds it)"
fi
base_size=$(docker image inspect -f '{{.Size}}' "$BASE")

t=$(now)
BASE_IMAGE="$BASE" "$here/build-image.sh" "$IMAGE" -- --network host >"$work/build.log" 2>&1 \
  || { tail -30 "$work/build.log" >&2; fail "image build"; }
build_seconds=$(since "$t")
image_size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
mib() { awk -v b="$1" 'BEGIN { printf "%.0f MiB", b / 1048576 }'; }
say "image $IMAGE built in $build_seconds s (publish + docker build): $(mib "$image_size") (base $(mib "$base_size"))"

# Every shared library in the image resolves (libLibTorchSharp's GLIBCXX_3.4.32 is weak: a warning, not an error).
missing_libs=$(docker run --rm --network host --entrypoint /bin/bash "$IMAGE" -c \
  'for f in /opt/gigapath/*.so /usr/lib/x86_64-linux-gnu/libopenslide.so.0 /usr/lib/x86_64-linux-gnu/libtiff.so.6; do ldd "$f" 2>/dev/null | grep "not found" | sed "s|^|$f: |"; done')
[ -z "$missing_libs" ] || { echo "$missing_libs" >&2; fail "unresolved libraries in the image"; }
say "ldd: every library in /opt/gigapath, libopenslide.so.0 and libtiff.so.6 resolves in the image"

# ---------------------------------------------------------------------------------------------------------------- 3
# The host's references, with the repository's own CLI (./gigapath: framework-dependent, the host's libraries).
rm -rf "$work/host" "$work/serve" "$work/run"
mkdir -p "$work/host" "$work/serve" "$work/run"
./gigapath --version >/dev/null
./gigapath tile "$slide_dir/$slide_id.svs" --out "$work/host/tiles" --save-tiles >/dev/null
mapfile -t tiles < <(find "$work/host/tiles/$slide_id.tiles" -name '*.png' | sort | head -n 8)
[ ${#tiles[@]} -eq 8 ] || fail "expected 8 tiles from the slide, got ${#tiles[@]}"
./gigapath embed-tiles --model "$tile_model" --tokens --out "$work/host/tiles.safetensors" "${tiles[@]}" >/dev/null
if [ ! -f "$demo/tile/model.safetensors" ] || [ ! -f "$demo/slide/model.safetensors" ]; then
  dotnet run --project tools/GigaPath.Tools -c Release -p:TorchBackend=cpu -- make-demo-models "$demo" >/dev/null
fi
./gigapath run "$slide_dir/$slide_id.svs" --tile-model "$demo/tile" --slide-model "$demo/slide" \
  --out "$work/host/run" --progress lines >/dev/null

# The request: 8 H&E tiles of the bundled slide, as Azure ML's client sends them.
{
  printf '{"input_data": {"columns": ["image"], "index": [%s], "data": [' "$(seq -s, 0 $((${#tiles[@]} - 1)))"
  for i in "${!tiles[@]}"; do
    [ "$i" -gt 0 ] && printf ','
    printf '["%s"]' "$(base64 -w0 "${tiles[$i]}")"
  done
  printf ']}}'
} >"$work/serve/request.json"

port=$("$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
key="test-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
mkdir -p "$work/serve/secret"
printf '%s\n' "$key" >"$work/serve/secret/api-key"
chmod 0644 "$work/serve/secret/api-key"
base_url="http://127.0.0.1:$port"
auth=(-H "Authorization: Bearer $key")

say "serve: docker run --network host --read-only --tmpfs /tmp (model and key read-only volumes, listening on $base_url)"
t=$(now)
docker run -d --name "$name-serve" --network host --read-only --tmpfs /tmp:rw,mode=1777,size=256m \
  --health-interval 2s --health-start-period 30s \
  -e GIGAPATH_URLS="$base_url" \
  -v "$tile_model:/models/tile:ro" -v "$work/serve/secret:/run/secrets/gigapath:ro" \
  "$IMAGE" serve --api-key-file /run/secrets/gigapath/api-key --shutdown-timeout 30 >/dev/null
containers+=("$name-serve")
ready_seconds=""
for _ in $(seq 1 600); do
  if [ "$(curl -s -o /dev/null -w '%{http_code}' "$base_url/ready")" = 200 ]; then ready_seconds=$(since "$t"); break; fi
  [ "$(docker inspect -f '{{.State.Running}}' "$name-serve")" = true ] || { docker logs "$name-serve" >&2; fail "serve exited"; }
  sleep 0.1
done
[ -n "$ready_seconds" ] || { docker logs "$name-serve" >&2; fail "no /ready within 60 s"; }
say "serve: first /ready $ready_seconds s after docker run: $(curl -s "$base_url/ready")"
health=$(curl -s -w ' %{http_code}' "$base_url/health")
[ "${health##* }" = 200 ] || fail "/health: $health"
say "serve: /health: $health"
code=$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' --data-binary @"$work/serve/request.json" "$base_url/score")
[ "$code" = 401 ] || fail "/score without the API key answered $code, not 401"
say "serve: /score without the API key: $code"

curl -sf "${auth[@]}" -H 'Content-Type: application/json' --data-binary @"$work/serve/request.json" \
  "$base_url/score?features=cls&format=json" -o "$work/serve/cls.json" || fail "/score?features=cls&format=json"
curl -sf "${auth[@]}" -H 'Content-Type: application/json' --data-binary @"$work/serve/request.json" \
  "$base_url/score" -o "$work/serve/tokens.json" || fail "/score"
say "serve: /score parity with the host's embed-tiles (8 tiles, tiny fixture tile encoder):"
"$PY" "$here/compare.py" score-json "$work/serve/cls.json" "$work/host/tiles.safetensors" >"$work/serve/cls.txt" \
  || { cat "$work/serve/cls.txt" >&2; fail "/score (cls) parity"; }
cat "$work/serve/cls.txt" >&2
"$PY" "$here/compare.py" score-torch "$work/serve/tokens.json" "$work/host/tiles.safetensors" >"$work/serve/torch.txt" \
  || { cat "$work/serve/torch.txt" >&2; fail "/score (patch tokens) parity"; }
tail -n 1 "$work/serve/torch.txt" | sed 's/^/  default \/score, torch.load: /' >&2

health_status=""
for _ in $(seq 1 40); do
  health_status=$(docker inspect -f '{{.State.Health.Status}}' "$name-serve")
  [ "$health_status" = healthy ] && break
  sleep 0.5
done
[ "$health_status" = healthy ] || fail "HEALTHCHECK status: $health_status"
say "serve: docker HEALTHCHECK status: $health_status"

rss() { docker exec "$name-serve" awk '/^(VmRSS|VmHWM)/ { printf "%s %.0f MiB ", $1, $2 / 1024 }' /proc/1/status; }
rss_after=$(rss)
say "serve: RSS after 16 scored images: $rss_after"

# SIGTERM with requests in flight: four requests of 8 images each at once, and one whose body is uploaded at
# 64 KiB/s (about 4 s on the wire); docker stop 1 s later. Every request must be answered 200 and the server exit 0.
size=$(stat -c %s "$work/serve/request.json")
pids=()
for i in 1 2 3 4; do
  curl -s "${auth[@]}" -H 'Content-Type: application/json' --data-binary @"$work/serve/request.json" \
    -o "$work/serve/drain-$i.json" -w '%{http_code}' "$base_url/score?features=cls&format=json" >"$work/serve/drain-$i.code" &
  pids+=($!)
done
curl -s "${auth[@]}" -H 'Content-Type: application/json' --data-binary @"$work/serve/request.json" --limit-rate 64k \
  -o "$work/serve/drain-slow.json" -w '%{http_code}' "$base_url/score?features=cls&format=json" >"$work/serve/drain-slow.code" &
pids+=($!)
sleep 1
t=$(now)
docker stop -t 60 "$name-serve" >/dev/null
stop_seconds=$(since "$t")
for p in "${pids[@]}"; do wait "$p" || true; done
exit_code=$(docker inspect -f '{{.State.ExitCode}}' "$name-serve")
codes=$(cat "$work/serve/"drain-*.code | tr '\n' ' ')
docker logs "$name-serve" >"$work/serve/serve.log" 2>&1
for f in "$work/serve/"drain-*.code; do [ "$(cat "$f")" = 200 ] || { cat "$work/serve/serve.log" >&2; fail "a request in flight at SIGTERM got $(cat "$f"): $codes"; }; done
"$PY" "$here/compare.py" score-json "$work/serve/drain-slow.json" "$work/host/tiles.safetensors" >"$work/serve/drain.txt" \
  || { cat "$work/serve/drain.txt" >&2; fail "the slow request's answer"; }
[ "$exit_code" = 0 ] || { cat "$work/serve/serve.log" >&2; fail "serve exited $exit_code after SIGTERM"; }
say "serve: SIGTERM (docker stop) with 5 requests in flight (one a ${size}-byte body at 64 KiB/s): answers $codes; the slow one equal to the host's; container exit code $exit_code after $stop_seconds s"
grep -E 'stopped|Application is shutting down' "$work/serve/serve.log" | tail -n 2 | sed 's/^/  log: /' >&2 || true

# ---------------------------------------------------------------------------------------------------------------- 4
# The invoking user (sudo's caller when run through sudo). root owns everything anyway, so a root caller is
# replaced by an unprivileged uid/gid, so that the ownership check means something.
run_uid="${SUDO_UID:-$(id -u)}"; run_gid="${SUDO_GID:-$(id -g)}"
if [ "$run_uid" = 0 ]; then run_uid=1000; run_gid=1000; say "run: invoked as root, so the container runs as 1000:1000 instead"; fi
out="$work/run/out"
mkdir -p "$out"
chown "$run_uid:$run_gid" "$out"
run_container() {
  docker run --rm --name "$name-run" --network host --read-only --tmpfs /tmp:rw,mode=1777,size=256m \
    --user "$run_uid:$run_gid" \
    -v "$slide_dir:/data:ro" -v "$demo:/models:ro" -v "$out:/results" \
    "$IMAGE" run "/data/$slide_id.svs" --tile-model /models/tile --slide-model /models/slide --out /results --progress lines
}
t=$(now)
run_container >"$work/run/first.log" 2>&1 || { cat "$work/run/first.log" >&2; fail "run in the container"; }
run_seconds=$(since "$t")
grep -E '^slides:' "$work/run/first.log" | sed 's/^/  first run: /' >&2
grep -q '^slides: 1 done' "$work/run/first.log" || fail "the first run did not finish the slide"
others=$(find "$out" \( ! -uid "$run_uid" -o ! -gid "$run_gid" \) -print)
[ -z "$others" ] || { echo "$others" >&2; fail "files not owned by $run_uid:$run_gid"; }
say "run: $(find "$out" -type f | wc -l) files in the output folder, all owned by $run_uid:$run_gid ($run_seconds s with container start)"
"$PY" "$here/compare.py" run "$out" "$work/host/run" "$slide_id" >&2 || fail "run outputs differ from the host's"

before=$(cd "$out" && find . -type f ! -path './.locks/*' -printf '%p %s %T@\n' | sort | sha256sum)
run_container >"$work/run/second.log" 2>&1 || { cat "$work/run/second.log" >&2; fail "second run in the container"; }
grep -E 'skipped|^slides:' "$work/run/second.log" | sed 's/^/  second run: /' >&2
grep -q '^slides: 0 done, 1 skipped (already complete)' "$work/run/second.log" || fail "the second run did not skip the slide"
after=$(cd "$out" && find . -type f ! -path './.locks/*' -printf '%p %s %T@\n' | sort | sha256sum)
[ "$before" = "$after" ] || fail "the second run changed files in the output folder"
say "run: the second run skipped the slide and left every output file untouched (same size and mtime)"

# ---------------------------------------------------------------------------------------------------------------- 5
docker builder prune -f >/dev/null 2>&1 || true
cat <<SUMMARY
test-image: summary
  docker daemon        $(docker version -f '{{.Server.Version}}') (dockerd --bridge=none --iptables=false; containers --network host only)
  base image           $BASE: $(mib "$base_size"), debootstrap + import: $base_seconds s
  image build          $build_seconds s (dotnet publish + docker build on the local base)
  image size           $(mib "$image_size") ($image_size bytes)
  first /ready         $ready_seconds s after docker run (tiny fixture tile encoder)
  /score parity        features=cls: $(tail -n 1 "$work/serve/cls.txt" | sed 's/^ *//')
                       default (torch.load): $(tail -n 1 "$work/serve/torch.txt" | sed 's/^ *//')
  serve RSS            $rss_after
  SIGTERM drain        5 requests in flight: $codes-> exit code $exit_code in $stop_seconds s
  run + resume         first run equal to the host's, files owned by $run_uid:$run_gid; second run skipped the slide
test-image: PASSED
SUMMARY
