#!/usr/bin/env bash
# Slow check of the container image (docs/deploy.md, "Check the image"): not part of `dotnet test` or .ci/run.
#
#   sudo deploy/test-image.sh [--fresh] [--full-size]
#
# 1. Installs what it lacks from Debian (docker.io, debootstrap, curl, python3-torch, python3-h5py) and starts
#    `dockerd --bridge=none --iptables=false` when no daemon answers (and stops it again at the end).
# 2. Builds a Debian 12 base image with debootstrap + `docker import` (no image registry is reachable here), unless it
#    is already there (--fresh rebuilds it), then the gigapath image on it with deploy/build-image.sh.
# 3. serve: /health, /ready, /score against the host's `embed-tiles` (1e-5), the API key, SIGTERM while requests are
#    in flight (all must answer 200, the container must exit 0), the container's RSS.
# 4. run on the bundled slide into a mounted folder as the invoking user: outputs equal to the host's run, owned by
#    that user; a second run skips the slide and changes no file.
# 5. With --full-size: serve and run with random weights of the published shapes (tile encoder 1.13 B parameters,
#    4.5 GB; slide encoder 86 M), written once by tools/ to artifacts/image: time to /ready and RSS at real size, for
#    the resource requests in deploy/k8s. Needs about 5 GB of disk, 8 GiB of memory and a few minutes more.
# 6. Prints build time, image size, time to first /ready and the figures above.
#
# Network rule of the machines this runs on: containers only ever run with `--network host` (builds too), and the
# script talks to them on 127.0.0.1 only; the server is told to listen on 127.0.0.1.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
cd "$root"

fresh=0; full=0
for a in "$@"; do
  case "$a" in
    --fresh) fresh=1 ;;
    --full-size) full=1 ;;
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
  for c in "${containers[@]}"; do "$DOCKER" rm -fv "$c" >/dev/null 2>&1; done
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
  base_seconds="$(since "$t") s"
  say "base image $BASE built in $base_seconds"
else
  base_seconds="reused (--fresh rebuilds it)"
  say "base image $BASE already there (--fresh rebuilds it)"
fi
base_size=$(docker image inspect -f '{{.Size}}' "$BASE")

old_image=$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)
t=$(now)
BASE_IMAGE="$BASE" "$here/build-image.sh" "$IMAGE" -- --network host >"$work/build.log" 2>&1 \
  || { tail -30 "$work/build.log" >&2; fail "image build"; }
build_seconds=$(since "$t")
image_size=$(docker image inspect -f '{{.Size}}' "$IMAGE")
# The image this build replaced under the same tag (nothing else of the daemon's is touched).
if [ -n "$old_image" ] && [ "$old_image" != "$(docker image inspect -f '{{.Id}}' "$IMAGE")" ]; then
  docker rmi "$old_image" >/dev/null 2>&1 || true
fi
mib() { awk -v b="$1" 'BEGIN { printf "%.0f MiB", b / 1048576 }'; }
say "image $IMAGE built in $build_seconds s (publish + docker build): $(mib "$image_size") (base $(mib "$base_size"))"
docker history --no-trunc --format '{{.Size}}	{{.CreatedBy}}' "$IMAGE" | awk -F'\t' '$1 != "0B" {
  sub(/^\/bin\/sh -c (#\(nop\) +)?/, "", $2); if ($2 == "") $2 = "(the base image)"; printf "  layer %8s  %s\n", $1, substr($2, 1, 90) }' >&2

# Every shared library in the image resolves (libLibTorchSharp's GLIBCXX_3.4.32 is weak: a warning, not an error).
missing_libs=$(docker run --rm --network host --entrypoint /bin/bash "$IMAGE" -c \
  'for f in /opt/gigapath/*.so /usr/lib/x86_64-linux-gnu/libopenslide.so.0 /usr/lib/x86_64-linux-gnu/libtiff.so.6; do ldd "$f" 2>/dev/null | grep "=> not found" | sed "s|^|$f: |"; done')
[ -z "$missing_libs" ] || { echo "$missing_libs" >&2; fail "unresolved libraries in the image"; }
say "ldd: every library in /opt/gigapath, libopenslide.so.0 and libtiff.so.6 resolves in the image"

# ---------------------------------------------------------------------------------------------------------------- 3
# The host's references, with the repository's own CLI (./gigapath: framework-dependent, the host's libraries).
rm -rf "$work/host" "$work/serve" "$work/run"
mkdir -p "$work/host" "$work/serve" "$work/run"
./gigapath --version >/dev/null
host() { ./gigapath "$@" >>"$work/host/host.log" 2>&1 || { cat "$work/host/host.log" >&2; fail "host: gigapath $1"; }; }
host tile "$slide_dir/$slide_id.svs" --out "$work/host/tiles" --save-tiles
mapfile -t tiles < <(find "$work/host/tiles/$slide_id.tiles" -name '*.png' | sort | head -n 8)
[ ${#tiles[@]} -eq 8 ] || fail "expected 8 tiles from the slide, got ${#tiles[@]}"
host embed-tiles --model "$tile_model" --out "$work/host/tiles.safetensors" "${tiles[@]}"
host embed-tiles --model "$tile_model" --tokens --out "$work/host/tokens.safetensors" "${tiles[@]}"
if [ ! -f "$demo/tile/model.safetensors" ] || [ ! -f "$demo/slide/model.safetensors" ]; then
  dotnet run --project tools/GigaPath.Tools -c Release -p:TorchBackend=cpu -- make-demo-models "$demo" >&2
fi
host run "$slide_dir/$slide_id.svs" --tile-model "$demo/tile" --slide-model "$demo/slide" --out "$work/host/run" \
  --progress lines

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

# Starts `serve` in a container named $1 on the tile model folder $2 (read-only root file system, a tmpfs on /tmp,
# model and API key as read-only volumes, listening on $base_url; more `docker run` options after that) and waits
# for /ready: sets ready_seconds.
start_serve() {
  local t; t=$(now)
  docker run -d --name "$1" --network host --read-only --tmpfs /tmp:rw,mode=1777,size=256m \
    --health-interval 2s --health-start-period 60s \
    -e GIGAPATH_URLS="$base_url" \
    -v "$2:/models/tile:ro" -v "$work/serve/secret:/run/secrets/gigapath:ro" "${@:3}" \
    "$IMAGE" serve --api-key-file /run/secrets/gigapath/api-key --shutdown-timeout 30 >/dev/null
  containers+=("$1")
  ready_seconds=""
  while awk -v a="$t" -v b="$(now)" 'BEGIN { exit !(b - a < 300) }'; do
    if [ "$(curl -s -o /dev/null -w '%{http_code}' "$base_url/ready")" = 200 ]; then ready_seconds=$(since "$t"); break; fi
    [ "$(docker inspect -f '{{.State.Running}}' "$1")" = true ] || { docker logs "$1" >&2; fail "serve exited"; }
    sleep 0.1
  done
  [ -n "$ready_seconds" ] || { docker logs "$1" >&2; fail "no /ready within 300 s"; }
}
say "serve: docker run --network host --read-only --tmpfs /tmp (model and key read-only volumes, listening on $base_url)"
start_serve "$name-serve" "$tile_model"
tiny_ready=$ready_seconds
say "serve: first /ready $tiny_ready s after docker run: $(curl -s "$base_url/ready")"
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
"$PY" "$here/compare.py" score-torch "$work/serve/tokens.json" "$work/host/tokens.safetensors" >"$work/serve/torch.txt" \
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

# Resident memory of a container's process (PID 1): current and high-water mark.
rss() {
  docker exec "$1" awk '/^(VmHWM|VmRSS|RssAnon)/ { v[$1] = $2 / 1024 }
    END { printf "VmRSS %.0f MiB (anonymous %.0f MiB), VmHWM %.0f MiB", v["VmRSS:"], v["RssAnon:"], v["VmHWM:"] }' /proc/1/status
}
# The highest memory use the kernel charged to container $1's cgroup (page cache included), in MiB.
cgroup_peak() {
  local id f; id=$(docker inspect -f '{{.Id}}' "$1")
  for f in "/sys/fs/cgroup/memory/docker/$id/memory.max_usage_in_bytes" "/sys/fs/cgroup/docker/$id/memory.peak" \
           "/sys/fs/cgroup/system.slice/docker-$id.scope/memory.peak"; do
    [ -r "$f" ] && { awk '{ printf "%.0f MiB", $1 / 1048576 }' "$f"; return; }
  done
  echo "not readable"
}
# Samples the anonymous resident memory of container $1's process every 0.3 s while process $2 (here) runs: sets
# anon_peak. (VmHWM also counts the weight file's mapped pages, which the kernel drops under a memory limit.)
sample_anon() {
  local a; anon_peak=0
  while kill -0 "$2" 2>/dev/null; do
    a=$(docker exec "$1" awk '/^RssAnon/ { printf "%d", $2 / 1024 }' /proc/1/status 2>/dev/null || true)
    case "$a" in '' | *[!0-9]*) ;; *) [ "$a" -gt "$anon_peak" ] && anon_peak=$a ;; esac
    sleep 0.3
  done
}
rss_after=$(rss "$name-serve")
say "serve: RSS after 16 scored images: $rss_after"

# SIGTERM with requests in flight: five requests of 8 tiles each whose bodies go up at 128 KiB/s (about 5.5 s on
# the wire); docker stop 1 s after they start. The listener must close (a new connection is refused) while they are
# still in flight, every one of them must then be answered 200 with the host's values, and the server exit 0.
size=$(stat -c %s "$work/serve/request.json")
pids=()
for i in 1 2 3 4 5; do
  { curl -s "${auth[@]}" -H 'Content-Type: application/json' --data-binary @"$work/serve/request.json" --limit-rate 128k \
      -o "$work/serve/drain-$i.json" -w '%{http_code}' "$base_url/score?features=cls&format=json"; printf ' %s\n' "$(now)"; } \
    >"$work/serve/drain-$i.out" &
  pids+=($!)
done
sleep 1
t_stop=$(now)
docker stop -t 60 "$name-serve" >/dev/null &
stop_pid=$!
refused=""
for _ in $(seq 1 200); do
  rc=0; curl -s -o /dev/null --max-time 2 "$base_url/health" || rc=$?
  if [ "$rc" = 7 ]; then refused=$(since "$t_stop"); break; fi
  sleep 0.05
done
wait "$stop_pid"
stop_seconds=$(since "$t_stop")
for p in "${pids[@]}"; do wait "$p" || true; done
exit_code=$(docker inspect -f '{{.State.ExitCode}}' "$name-serve")
docker logs "$name-serve" >"$work/serve/serve.log" 2>&1
[ -n "$refused" ] || fail "new connections were still accepted 10 s after SIGTERM"
codes=""; after=0
for i in 1 2 3 4 5; do
  read -r code finished <"$work/serve/drain-$i.out"
  codes+="$code "
  [ "$code" = 200 ] || { cat "$work/serve/serve.log" >&2; fail "request $i, in flight at SIGTERM, got $code"; }
  awk -v f="$finished" -v s="$t_stop" 'BEGIN { exit !(f > s) }' && after=$((after + 1))
  "$PY" "$here/compare.py" score-json "$work/serve/drain-$i.json" "$work/host/tiles.safetensors" >"$work/serve/drain-$i.txt" \
    || { cat "$work/serve/drain-$i.txt" >&2; fail "request $i's answer after SIGTERM"; }
done
[ "$after" = 5 ] || fail "only $after of the 5 requests were still in flight at SIGTERM"
[ "$exit_code" = 0 ] || { cat "$work/serve/serve.log" >&2; fail "serve exited $exit_code after SIGTERM"; }
drain="5 requests (${size}-byte bodies at 128 KiB/s) in flight at SIGTERM; listener closed after $refused s; answers ${codes}equal to the host's; exit code $exit_code after $stop_seconds s"
say "serve: SIGTERM (docker stop): $drain"
grep -E 'stopped|shutting down' "$work/serve/serve.log" | tail -n 2 | sed 's/^/  log: /' >&2 || true

# ---------------------------------------------------------------------------------------------------------------- 4
# The invoking user (sudo's caller when run through sudo). root owns everything anyway, so a root caller is
# replaced by an unprivileged uid/gid, so that the ownership check means something.
run_uid="${SUDO_UID:-$(id -u)}"; run_gid="${SUDO_GID:-$(id -g)}"
if [ "$run_uid" = 0 ]; then run_uid=1000; run_gid=1000; say "run: invoked as root, so the container runs as 1000:1000 instead"; fi
# Runs `run` on the bundled slide in a container as $run_uid:$run_gid with the models folder $1 (tile/, slide/) into
# the output folder $2, its output in $3, more `gigapath run` options after that (and `docker run` options in
# run_opts); samples the process's anonymous RSS meanwhile: sets run_seconds and run_peak.
run_in_container() {
  local t c code; t=$(now); c="$name-run"
  docker run -d --name "$c" --network host --read-only --tmpfs /tmp:rw,mode=1777,size=256m \
    --user "$run_uid:$run_gid" -v "$slide_dir:/data:ro" -v "$1:/models:ro" -v "$2:/results" "${run_opts[@]}" \
    "$IMAGE" run "/data/$slide_id.svs" --tile-model /models/tile --slide-model /models/slide --out /results \
    --progress lines "${@:4}" >/dev/null
  containers+=("$c")
  docker wait "$c" >/dev/null &
  sample_anon "$c" $!
  run_peak="$anon_peak MiB"
  code=$(docker wait "$c")
  run_seconds=$(since "$t")
  docker logs "$c" >"$3" 2>&1
  docker rm -v "$c" >/dev/null
  [ "$code" = 0 ] || { cat "$3" >&2; fail "run in the container exited $code"; }
}
run_opts=()
out="$work/run/out"
mkdir -p "$out"
chown "$run_uid:$run_gid" "$out"
run_in_container "$demo" "$out" "$work/run/first.log"
grep -E '^slides:' "$work/run/first.log" | sed 's/^/  first run: /' >&2
grep -q '^slides: 1 done' "$work/run/first.log" || fail "the first run did not finish the slide"
others=$(find "$out" \( ! -uid "$run_uid" -o ! -gid "$run_gid" \) -print)
[ -z "$others" ] || { echo "$others" >&2; fail "files not owned by $run_uid:$run_gid"; }
say "run: $(find "$out" -type f | wc -l) files in the output folder, all owned by $run_uid:$run_gid ($run_seconds s with container start, anonymous RSS up to $run_peak)"
"$PY" "$here/compare.py" run "$out" "$work/host/run" "$slide_id" >"$work/run/compare.txt" \
  || { cat "$work/run/compare.txt" >&2; fail "run outputs differ from the host's"; }
cat "$work/run/compare.txt" >&2

before=$(cd "$out" && find . -type f ! -path './.locks/*' -printf '%p %s %T@\n' | sort | sha256sum)
run_in_container "$demo" "$out" "$work/run/second.log"
grep -E 'skipped|^slides:' "$work/run/second.log" | sed 's/^/  second run: /' >&2
grep -q '^slides: 0 done, 1 skipped (already complete)' "$work/run/second.log" || fail "the second run did not skip the slide"
after=$(cd "$out" && find . -type f ! -path './.locks/*' -printf '%p %s %T@\n' | sort | sha256sum)
[ "$before" = "$after" ] || fail "the second run changed files in the output folder"
say "run: the second run skipped the slide and left every output file untouched (same size and mtime; $run_seconds s)"

# ---------------------------------------------------------------------------------------------------------------- 5
full_summary=""
if [ "$full" = 1 ]; then
  big="$root/artifacts/image/full-random"
  if [ ! -f "$big/tile/model.safetensors" ] || [ ! -f "$big/slide/model.safetensors" ]; then
    say "full size: writing random models of the published shapes to $big (tools/, once)"
    dotnet run --project tools/GigaPath.Tools -c Release -p:TorchBackend=cpu -- make-random-tile-model "$big/tile" >&2
    dotnet run --project tools/GigaPath.Tools -c Release -p:TorchBackend=cpu -- make-random-slide-model "$big/slide" >&2
  fi
  # Under the memory limit of deploy/k8s/serve.yaml's request (6 GiB): it must load, answer and not be OOM-killed.
  start_serve "$name-full" "$big/tile" --memory 6g --memory-swap 6g
  full_ready=$ready_seconds
  rss_ready=$(rss "$name-full")
  say "full size: serve (--memory 6g) ready $full_ready s after docker run; $rss_ready"
  # One full batch (--batch-size 16): the 8 tiles twice.
  "$PY" -c 'import json, sys; r = json.load(open(sys.argv[1])); d = r["input_data"]; d["data"] *= 2; d["index"] = list(range(len(d["data"]))); json.dump(r, open(sys.argv[2], "w"))' \
    "$work/serve/request.json" "$work/serve/request16.json"
  t=$(now)
  curl -s "${auth[@]}" -H 'Content-Type: application/json' --data-binary @"$work/serve/request16.json" \
    -o /dev/null -w '%{http_code}' "$base_url/score?features=cls" >"$work/serve/full.code" &
  sample_anon "$name-full" $!
  score16=$(since "$t")
  [ "$(cat "$work/serve/full.code")" = 200 ] || { docker logs "$name-full" >&2; fail "/score at full size: $(cat "$work/serve/full.code")"; }
  serve_anon=$anon_peak
  rss_scored=$(rss "$name-full")
  sleep 3
  rss_idle=$(rss "$name-full")
  serve_cgroup=$(cgroup_peak "$name-full")
  say "full size: /score of 16 tiles in $score16 s, anonymous RSS up to $serve_anon MiB; after it: $rss_scored; 3 s later (idle trim): $rss_idle; cgroup peak (page cache included) $serve_cgroup"
  docker stop -t 60 "$name-full" >/dev/null
  oom=$(docker inspect -f '{{.State.OOMKilled}}' "$name-full")
  [ "$oom" = false ] || fail "serve was OOM-killed under --memory 6g"
  full_out="$work/run/full"
  mkdir -p "$full_out"; chown "$run_uid:$run_gid" "$full_out"
  # One batch of 16 tiles under the cohort Job's memory request (8 GiB).
  run_opts=(--memory 8g --memory-swap 8g)
  run_in_container "$big" "$full_out" "$work/run/full.log" --max-tiles 16
  grep -E '^(slides|tiles):' "$work/run/full.log" | sed 's/^/  full size run: /' >&2
  say "full size: run (--memory 8g) of the bundled slide's first 16 tiles in $run_seconds s, anonymous RSS up to $run_peak"
  full_summary="full size (random weights of the published shapes, float32; 2 shared cores, so times are upper bounds):
                       serve under --memory 6g: /ready after $full_ready s; when ready: $rss_ready
                       /score of 16 tiles (one batch) in $score16 s: anonymous RSS up to $serve_anon MiB; idle after: $rss_idle
                       cgroup peak (page cache included) $serve_cgroup: not OOM-killed
                       run under --memory 8g, first 16 tiles of the bundled slide: $run_seconds s, anonymous RSS up to $run_peak"
fi

# ---------------------------------------------------------------------------------------------------------------- 6
docker builder prune -f >/dev/null 2>&1 || true
cat <<SUMMARY
test-image: summary
  docker daemon        $(docker version -f '{{.Server.Version}}') (dockerd --bridge=none --iptables=false; containers --network host only)
  base image           $BASE: $(mib "$base_size"), debootstrap + import: $base_seconds
  image build          $build_seconds s (dotnet publish + docker build on the local base)
  image size           $(mib "$image_size") ($image_size bytes)
  first /ready         $tiny_ready s after docker run (tiny fixture tile encoder)
  /score parity        features=cls: $(tail -n 1 "$work/serve/cls.txt" | sed 's/^ *//')
                       default (torch.load): $(tail -n 1 "$work/serve/torch.txt" | sed 's/^ *//')
  serve RSS            $rss_after
  SIGTERM drain        $drain
  run + resume         first run equal to the host's, files owned by $run_uid:$run_gid; second run skipped the slide
${full_summary:+  $full_summary
}test-image: PASSED
SUMMARY
