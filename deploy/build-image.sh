#!/usr/bin/env bash
# Builds the gigapath image: a self-contained `dotnet publish` of src/GigaPath.Cli for linux-x64 (CPU libtorch),
# without libtorch's test and Python libraries, then `docker build` of deploy/Dockerfile on it.
#
#   deploy/build-image.sh [IMAGE]          IMAGE defaults to gigapath-native:latest
#   BASE_IMAGE=...    the base (default debian:bookworm-slim; deploy/test-image.sh passes its local debootstrap one)
#   DOCKER=...        the docker client (default: docker)
#   extra `docker build` options after --, e.g. deploy/build-image.sh gigapath-native:dev -- --network host
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
image="gigapath-native:latest"
if [ $# -gt 0 ] && [ "$1" != -- ]; then image="$1"; shift; fi
[ "${1:-}" = -- ] && shift
docker="${DOCKER:-docker}"
base="${BASE_IMAGE:-debian:bookworm-slim}"
context="$root/artifacts/image/context"

rm -rf "$context"
mkdir -p "$context"
echo "build-image: dotnet publish (Release, linux-x64, self-contained) -> $context/app" >&2
dotnet publish "$root/src/GigaPath.Cli/GigaPath.Cli.csproj" -c Release -r linux-x64 --self-contained true \
  -p:TorchBackend=cpu -o "$context/app" --nologo -v quiet >&2
# libtorch's Python bindings and its own test and example backends are not in the publish output: the GigaPath
# package's publish targets leave them out (src/GigaPath/buildTransitive/GigaPath.targets, GigaPathTrimTorchPublish).
# LTTng tracing provider of the .NET runtime: needs liblttng-ust, which the image does not have; the runtime loads it
# only when it is there.
rm -f "$context/app/libcoreclrtraceptprovider.so" "$context/app/"*.xml
cp "$here/docker/entrypoint.sh" "$here/docker/healthcheck.sh" "$context/"

echo "build-image: docker build -t $image (BASE_IMAGE=$base)" >&2
"$docker" build -f "$here/Dockerfile" --build-arg "BASE_IMAGE=$base" -t "$image" "$@" "$context"
