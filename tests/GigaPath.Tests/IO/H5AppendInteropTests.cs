using System.Text.Json;
using GigaPath.IO;
using GigaPath.Models.Slide;
using NUnit.Framework;

namespace GigaPath.Tests.IO;

/// <summary>
/// Issue 25: rows appended to our <c>.h5</c> by h5py the way TRIDENT's <c>save_h5(mode='a')</c> and CLAM's
/// <c>save_hdf5(mode='a')</c> append (<c>dset.resize(len(dset) + n, axis=0); dset[-n:] = val</c>) must read back as
/// the appended values after the file is reopened. With a fixed maximum shape they read back as copies of rows 0…n-1,
/// so this compares values (ours, then the appended ones), not row counts, and the appended rows differ from every
/// row we wrote.
/// </summary>
[Category(PythonTorch.Category)]
public class H5AppendInteropTests
{
    /// <summary>
    /// TRIDENT's <c>save_h5</c> (trident/IO.py) in mode 'a': our three datasets grow by three rows, and a new one is
    /// created beside them; then a reopen that dumps every value (raw) and the maximum shapes before the append (JSON).
    /// </summary>
    private const string Script = """
import sys, json, h5py, numpy as np
path = sys.argv[1]
def save_h5(save_path, assets, attributes=None, mode='w'):
    with h5py.File(save_path, mode) as file:
        for key, val in assets.items():
            data_shape = val.shape
            if key not in file:
                data_type = val.dtype
                chunk_shape = (1, ) + data_shape[1:]
                maxshape = (None, ) + data_shape[1:]
                dset = file.create_dataset(key, shape=data_shape, maxshape=maxshape, chunks=chunk_shape, dtype=data_type)
                dset[:] = val
                if attributes is not None and key in attributes:
                    for attr_key, attr_val in attributes[key].items():
                        dset.attrs[attr_key] = attr_val
            else:
                dset = file[key]
                dset.resize(len(dset) + data_shape[0], axis=0)
                assert dset.dtype == val.dtype, (key, dset.dtype, val.dtype)
                dset[-data_shape[0]:] = val
with h5py.File(path, 'r') as f:
    before = {k: (f[k].maxshape, f[k].chunks) for k in ('features', 'coords', 'coords_tiling')}
    dim = f['features'].shape[1]
save_h5(path, {
    'features': (1000 + np.arange(3 * dim, dtype=np.float32)).reshape(3, dim),
    'coords': np.array([[90000, 91000], [92000, 93000], [94000, 95000]], dtype=np.int64),
    'coords_tiling': np.array([[9000, 9100], [9200, 9300], [9400, 9500]], dtype=np.int64),
    'annotations': np.arange(6, dtype=np.int32).reshape(3, 2),  # a new key: TRIDENT creates the dataset in our file
}, attributes={'annotations': {'source': 'h5py'}}, mode='a')
with h5py.File(path, 'r') as f:
    for k in ('features', 'coords', 'coords_tiling'):
        f[k][()].tofile(path + '.' + k + '.raw')
    print(json.dumps({k: [list(m), list(c) if c else None] for k, (m, c) in before.items()}))
""";

    /// <summary>5 × 4: one chunk per dataset. 3000 × 1536: 72 chunks of 42 rows, so a two-level chunk B-tree.</summary>
    [TestCase(5, 4)]
    [TestCase(3000, 1536)]
    public void RowsAppendedByH5pyKeepTheirValuesAfterReopening(int n, int dim)
    {
        PythonTorch.RequireOrIgnore("h5py");
        var dir = FixturePaths.TempDir("h5-append");
        try
        {
            var features = Enumerable.Range(0, n * dim).Select(i => i * 0.5f).ToArray();
            var coords = Enumerable.Range(0, n).SelectMany(i => new double[] { 256 * i, 512 * i + 7 }).ToArray();
            var tiling = Enumerable.Range(0, n).SelectMany(i => new double[] { 128 * i, 64 * i + 3 }).ToArray();
            var path = Path.Combine(dir, "slide.h5");
            TileFeatureFile.WriteH5(path, new TileFeatures(features, n, dim, coords, new Dictionary<string, object> { ["patch_size"] = 256 })
            {
                TilingCoords = tiling,
            });

            var (code, output) = PythonTorch.Run(Script, [path], "h5py");
            Assert.That(code, Is.Zero, output);
            float[] appendedFeatures = Enumerable.Range(0, 3 * dim).Select(i => 1000f + i).ToArray();
            long[] appendedCoords = [90000, 91000, 92000, 93000, 94000, 95000];
            long[] appendedTiling = [9000, 9100, 9200, 9300, 9400, 9500];
            Assert.That(Raw<float>(path, "features"), Is.EqualTo(features.Concat(appendedFeatures)), "features: ours, then the three appended rows");
            Assert.That(Raw<long>(path, "coords"), Is.EqualTo(coords.Select(v => (long)v).Concat(appendedCoords)), "coords: ours, then the three appended rows");
            Assert.That(Raw<long>(path, "coords_tiling"), Is.EqualTo(tiling.Select(v => (long)v).Concat(appendedTiling)),
                "coords_tiling: ours, then the three appended rows");

            using var doc = JsonDocument.Parse(output);
            foreach (var name in new[] { "features", "coords", "coords_tiling" })
                Assert.That(doc.RootElement.GetProperty(name)[0][0].ValueKind, Is.EqualTo(JsonValueKind.Null),
                    $"'{name}' is written with an unlimited first dimension (maxshape None): {output}");

            // Our own reader reads the appended file the same way.
            var reread = TileFeatureFile.Read(path);
            Assert.That(reread.Count, Is.EqualTo(n + 3));
            Assert.That(reread.Features, Is.EqualTo(features.Concat(appendedFeatures)));
            Assert.That(reread.Coords, Is.EqualTo(coords.Concat(appendedCoords.Select(v => (double)v))));
            Assert.That(reread.TilingCoords, Is.EqualTo(tiling.Concat(appendedTiling.Select(v => (double)v))));
            TestContext.Out.WriteLine($"interop: h5py appended 3 rows to our h5 [{n}, {dim}] (TRIDENT save_h5 mode='a'), reopened: features, " +
                $"coords and coords_tiling read back ours then the appended values; maxshape {output.Trim()}");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static T[] Raw<T>(string path, string name) where T : struct =>
        System.Runtime.InteropServices.MemoryMarshal.Cast<byte, T>(File.ReadAllBytes(path + "." + name + ".raw")).ToArray();
}
