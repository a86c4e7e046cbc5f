using GigaPath.IO;
using GigaPath.Pipeline;
using GigaPath.Slides;
using GigaPath.Tests.Slides;
using NUnit.Framework;

namespace GigaPath.Tests.Pipeline;

/// <summary>
/// Our pipeline's .h5 read with h5py the way CLAM and TRIDENT read it (their arithmetic on the attributes of
/// <c>coords</c>), on CMU-1-Small-Region at its own 0.499 µm/px and with <c>--slide-mpp 0.25</c> (512-px reads).
/// Runs where python3 has h5py; the full peer runs (their code, their pixels) are in the issue 11 closing note.
/// </summary>
public class PeerAttributeTests
{
    private const string Script = """
import sys, h5py
path, tile = sys.argv[1], int(sys.argv[2])
with h5py.File(path, 'r') as f:
    a = dict(f['coords'].attrs)
    n = f['coords'].shape[0]
    chunked = all(f[k].chunks is not None and f[k].chunks[1:] == f[k].shape[1:] for k in ('features', 'coords', 'coords_tiling'))
    cd = a.get('custom_downsample', 1)
    # CLAM: read patch_size at patch_level (Whole_Slide_Bag_FP), resize to patch_size // custom_downsample.
    clam_read0 = a['patch_size'] * int(a['downsample'][0])
    clam_tile = a['patch_size'] // cd
    # TRIDENT: WSIPatcher reads round(patch_size * dst_px / src_px) level-0 pixels with src_px = 10 / level0_mag, dst_px = 10 / target_mag.
    trident_read0 = round(a['patch_size'] * (10 / a['target_magnification']) / (10 / a['level0_magnification']))
    missing = [k for k in ('patch_size', 'patch_size_level0', 'level0_magnification', 'target_magnification', 'overlap', 'level0_width', 'level0_height', 'name', 'savetodir', 'patch_level', 'downsample', 'level_dim', 'downsampled_level_dim') if k not in a]
    print(int(clam_read0), int(clam_tile), int(trident_read0), int(a['patch_size_level0']), chunked, ','.join(missing) or '-', end=' ')
# CLAM's save_hdf5 / TRIDENT's save_h5(mode='a') append with dset.resize(len(dset) + n, axis=0).
import shutil, numpy as np
shutil.copy(path, path + '.append')
with h5py.File(path, 'r') as f:
    kept = {k: f[k][()] for k in ('features', 'coords')}
with h5py.File(path + '.append', 'a') as f:
    for key in ('features', 'coords'):
        d = f[key]; new = d[:2] + 1  # values no row holds yet, so a tail that reads back rows 0-1 fails
        d.resize(len(d) + 2, axis=0); d[-2:] = new
with h5py.File(path + '.append', 'r') as f:
    print(all(f[k].shape[0] == n + 2 and np.array_equal(f[k][-2:], f[k][:2] + 1) and np.array_equal(f[k][:n], kept[k]) for k in ('features', 'coords')))
""";

    [TestCase(null, 256)]
    [TestCase(0.25, 512)]
    public void ClamAndTridentReadOurTilesFieldOfView(double? slideMpp, int level0Tile)
    {
        var (probe, _) = PythonTorch.Run("import h5py", []);
        if (probe != 0) Assert.Ignore("python3 with h5py is not installed here (apt-get install python3-h5py)");
        var dir = FixturePaths.TempDir("peer-attributes");
        try
        {
            using var tile = PipelineTestData.TileEncoder();
            using var slide = PipelineTestData.SlideEncoder();
            var outputs = new SlideOutputs(dir, "cmu");
            var options = new PipelineOptions { Tiling = new TilingOptions { SlideMpp = slideMpp }, MaxTiles = 6 };
            new SlidePipeline(tile, slide, options).Process(new SlideJob("cmu", SlideFixtures.CmuSmallRegion), outputs);
            var (code, output) = PythonTorch.Run(Script, [outputs.H5, "256"]);
            Assert.That(code, Is.Zero, output);
            var f = output.Trim().Split(' ');
            Assert.That(f[0], Is.EqualTo(level0Tile.ToString()), "CLAM reads patch_size × downsample level-0 pixels: our tile's field of view");
            Assert.That(f[1], Is.EqualTo("256"), "patch_size // custom_downsample is our tile size");
            Assert.That(f[2], Is.EqualTo(level0Tile.ToString()), "TRIDENT's patcher reads our tile's field of view");
            Assert.That(f[3], Is.EqualTo(level0Tile.ToString()), "patch_size_level0");
            Assert.That(f[4], Is.EqualTo("True"), "datasets chunked along the tile axis");
            Assert.That(f[5], Is.EqualTo("-"), "every attribute TRIDENT's and CLAM's readers look up is there");
            Assert.That(f[6], Is.EqualTo("True"), "CLAM's and TRIDENT's appending (resize along axis 0) works on our file");
            Assert.That(GigaPath.Models.Slide.TilePositions.Resolve(TileFeatureFile.Read(outputs.H5) with { TilingCoords = null }, 256).TilingCoords,
                Is.EqualTo(TileFeatureFile.Read(outputs.H5).TilingCoords), "our reader places level-0 coords like coords_tiling");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
