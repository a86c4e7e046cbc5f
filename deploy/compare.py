#!/usr/bin/env python3
"""Comparisons for deploy/test-image.sh: the container's answers and outputs against the host's.

  compare.py score-json ANSWER.json HOST.safetensors       /score?features=cls&format=json vs embed-tiles `embeddings`
  compare.py score-torch ANSWER.json HOST.safetensors      default /score (base64 torch.save [1,D,g,g], decoded as
                                                           Microsoft's client does) vs embed-tiles --tokens rows 1..
  compare.py run CONTAINER_DIR HOST_DIR SLIDE_ID           the .h5 datasets and .slide.safetensors tensors of `run`

Prints the largest absolute difference and exits 1 when it is above --tol (default 1e-5) or a shape differs.
Needs Debian's python3-numpy, python3-torch (score-torch) and python3-h5py (run).
"""
import base64, io, json, struct, sys
import numpy as np

DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16, "I64": np.int64, "I32": np.int32,
          "U8": np.uint8, "I8": np.int8, "I16": np.int16, "BOOL": np.bool_}


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        lo, hi = meta["data_offsets"]
        out[name] = np.frombuffer(data[lo:hi], dtype=DTYPES[meta["dtype"]]).reshape(meta["shape"])
    return out


def diff(a, b, what):
    a = np.asarray(a); b = np.asarray(b)
    if a.shape != b.shape:
        print(f"  {what}: shape {a.shape} != {b.shape}")
        return float("inf")
    d = float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64)))) if a.size else 0.0
    print(f"  {what}: shape {list(a.shape)}, max |container - host| = {d:.3g}")
    return d


def main(argv):
    tol = 1e-5
    if "--tol" in argv:
        i = argv.index("--tol"); tol = float(argv[i + 1]); del argv[i:i + 2]
    mode, worst = argv[0], 0.0
    if mode == "score-json":
        answer = json.load(open(argv[1]))
        host = read_safetensors(argv[2])["embeddings"]
        got = np.array([np.array(row["image_features"], dtype=np.float32) for row in answer])
        worst = diff(got, host, f"/score?features=cls&format=json ({len(answer)} images) vs embed-tiles")
    elif mode == "score-torch":
        import torch
        answer = json.load(open(argv[1]))
        tokens = read_safetensors(argv[2])["tokens"]  # [N, 1 + g*g, D]
        for i, row in enumerate(answer):
            t = torch.load(io.BytesIO(base64.b64decode(row["image_features"])), weights_only=True)
            if t.dtype != torch.float32:
                print(f"  image {i}: dtype {t.dtype}"); return 1
            patches = tokens[i, 1:, :]
            g = int(round(patches.shape[0] ** 0.5))
            expect = patches.T.reshape(1, patches.shape[1], g, g)
            worst = max(worst, diff(t.numpy(), expect, f"/score image {i} (torch.load) vs embed-tiles --tokens"))
    elif mode == "run":
        import h5py
        cdir, hdir, sid = argv[1], argv[2], argv[3]
        with h5py.File(f"{cdir}/{sid}.h5", "r") as c, h5py.File(f"{hdir}/{sid}.h5", "r") as h:
            names = sorted(h.keys())
            if sorted(c.keys()) != names:
                print(f"  h5 datasets differ: {sorted(c.keys())} vs {names}"); return 1
            for name in names:
                worst = max(worst, diff(c[name][()], h[name][()], f"{sid}.h5 {name}"))
        cs = read_safetensors(f"{cdir}/{sid}.slide.safetensors")
        hs = read_safetensors(f"{hdir}/{sid}.slide.safetensors")
        if sorted(cs) != sorted(hs):
            print(f"  safetensors tensors differ: {sorted(cs)} vs {sorted(hs)}"); return 1
        for name in sorted(hs):
            worst = max(worst, diff(cs[name], hs[name], f"{sid}.slide.safetensors {name}"))
    else:
        print(__doc__); return 2
    ok = worst <= tol
    print(f"  largest difference {worst:.3g} {'<=' if ok else '>'} {tol:g}: {'equal' if ok else 'DIFFERENT'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
