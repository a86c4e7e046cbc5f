"""Writes clam_layout.h5 the way CLAM's save_hdf5 does (h5py, chunked resizable datasets, attributes on coords).

Run with Debian's python3 + python3-h5py (h5py 3.7, numpy 1.24):  /usr/bin/python3 generate.py
Values are closed-form so the C# test can check them exactly:
  features[i, j] = (i * 5 + j) / 8 - 2   float32 [7, 5]
  coords[i]      = (1000 + 512 * i, 2000 + 256 * (i % 3))   int64 [7, 2]
"""
import h5py
import numpy as np

n, d = 7, 5
features = (np.arange(n * d, dtype=np.float32).reshape(n, d) / 8 - 2).astype(np.float32)
coords = np.stack([1000 + 512 * np.arange(n), 2000 + 256 * (np.arange(n) % 3)], axis=1).astype(np.int64)

with h5py.File("clam_layout.h5", "w") as f:
    # CLAM: first batch creates datasets with maxshape (None, ...) and chunks (1, ...), later batches resize + append.
    for name, data in (("features", features), ("coords", coords)):
        ds = f.create_dataset(name, shape=(3,) + data.shape[1:], maxshape=(None,) + data.shape[1:],
                              chunks=(1,) + data.shape[1:], dtype=data.dtype)
        ds[:] = data[:3]
        ds.resize(n, axis=0)
        ds[3:] = data[3:]
    c = f["coords"]
    c.attrs["patch_size"] = np.int64(256)
    c.attrs["patch_level"] = np.int64(0)
    c.attrs["downsample"] = np.array([1.0, 1.0])
    c.attrs["level_dim"] = np.array([46000, 32914], dtype=np.int64)
    c.attrs["name"] = "TCGA-XX-0000"
    c.attrs["target_mpp"] = 0.5
    f.attrs["encoder"] = "prov-gigapath"
