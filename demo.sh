#!/usr/bin/env bash
# The whole pipeline on a small real H&E slide kept in the repository, with an UNTRAINED demo model pair:
# slide -> tissue detection and tiles at 0.5 µm/px -> tile embeddings (.h5) -> slide embedding (.safetensors).
# Real results need the real weights: see weights/README.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here"

# (a) OpenSlide and libtiff from the system packages.
libs="$(ldconfig -p 2>/dev/null || true)"
if ! grep -q 'libopenslide\.so\.0' <<<"$libs" || ! grep -q 'libtiff\.so\.6' <<<"$libs"; then
  echo "demo: installing libopenslide0 and libtiff6 (apt-get)" >&2
  sudo=""
  if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq libopenslide0 libtiff6
fi

# (b) Build the CLI (the ./gigapath wrapper publishes it to artifacts/cli on first use) and the tools.
./gigapath --version >/dev/null

# (c) The untrained demo models, from fixed seeds, unless already there.
if [ ! -f weights/demo/tile/model.safetensors ] || [ ! -f weights/demo/slide/model.safetensors ]; then
  echo "demo: writing the untrained demo models to weights/demo" >&2
  dotnet run --project tools/GigaPath.Tools -c Release -p:TorchBackend="${TORCH_BACKEND:-cpu}" -- make-demo-models weights/demo
fi

# (d) The pipeline on CMU-1-Small-Region (Aperio SVS, 2220 x 2967 px at 0.499 µm/px).
slide="tests/GigaPath.Tests/Fixtures/slides/CMU-1-Small-Region.svs"
./gigapath run "$slide" --tile-model weights/demo/tile --slide-model weights/demo/slide --out demo-out --retry-failed "$@"

# (e) Where the outputs are.
id="CMU-1-Small-Region"
cat <<MSG

Demo outputs in $here/demo-out (untrained demo models: the numbers show the plumbing, not pathology):
  $id.h5                  tile embeddings: features [N, 192] float32, coords [N, 2] level-0 px, coords_tiling [N, 2]
  $id.slide.safetensors   slide_embedding [1, 128], last_hidden_state, tile_embeddings_ctx
  $id.thumbnail.png       the slide with the tissue mask (green) and the embedded tiles (blue)
  $id.manifest.json       provenance and timings (tiles/s end to end and tile encoder alone)
Run it again: the slide is skipped (already complete). Real weights: weights/README.md.
MSG
