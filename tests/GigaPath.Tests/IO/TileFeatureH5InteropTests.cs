using System.Runtime.InteropServices;
using System.Text.Json;
using GigaPath.IO;
using GigaPath.Pipeline;
using GigaPath.Tests.Pipeline;
using GigaPath.Tests.Slides;
using NUnit.Framework;

namespace GigaPath.Tests.IO;

/// <summary>
/// The <c>.h5</c> that <c>gigapath run</c> writes, read by h5py the way CLAM reads it: datasets by name, the patch
/// attributes from the <c>coords</c> dataset (not the root, where our own reader would also find them).
/// </summary>
[Category(PythonTorch.Category)]
public class TileFeatureH5InteropTests
{
    private const string Id = "CMU-1-Small-Region";

    /// <summary>
    /// Attributes CLAM reads from <c>f['coords'].attrs</c>, with the value h5py must give (as JSON, so 256 and 256.0
    /// differ) for CMU-1-Small-Region tiled at the defaults. Add a row to check another attribute.
    /// </summary>
    private static readonly (string Name, string Json)[] CoordsAttributes =
    [
        ("patch_size", "256"),
        ("patch_level", "0"),
        ("downsample", "[1.0, 1.0]"),
        ("level_dim", "[2220, 2967]"),
        ("name", "\"CMU-1-Small-Region\""),
        ("custom_downsample", "1"),
        ("downsampled_level_dim", "[2220, 2967]"),
        ("patch_size_level0", "256"),
    ];

    private const string Script = """
import sys, json, h5py, numpy as np
def plain(v):
    if isinstance(v, bytes): return v.decode()
    return v.tolist() if hasattr(v, 'tolist') else v
path = sys.argv[1]
with h5py.File(path, 'r') as f:
    out = {}
    for name in ('features', 'coords'):
        d = f[name]
        out[name] = {'dtype': str(d.dtype), 'shape': list(d.shape), 'attrs': {k: plain(v) for k, v in d.attrs.items()}}
        d[()].tofile(path + '.' + name + '.raw')
print(json.dumps(out))
""";

    [Test]
    public void H5pyReadsTheFeaturesCoordsAndClamAttributesOfCoords()
    {
        PythonTorch.RequireOrIgnore("h5py");
        var dir = FixturePaths.TempDir("h5py-interop");
        try
        {
            var outputs = new SlideOutputs(dir, Id);
            using (var tile = PipelineTestData.TileEncoder())
            using (var slide = PipelineTestData.SlideEncoder())
                new SlidePipeline(tile, slide, new PipelineOptions { BatchSize = 16 }).Process(new SlideJob(Id, SlideFixtures.CmuSmallRegion), outputs);

            var (code, output) = PythonTorch.Run(Script, [outputs.H5], "h5py");
            Assert.That(code, Is.Zero, output);
            TestContext.Out.WriteLine($"h5py read {Path.GetFileName(outputs.H5)}: {output.Trim()}");
            using var doc = JsonDocument.Parse(output);
            var features = doc.RootElement.GetProperty("features");
            var coords = doc.RootElement.GetProperty("coords");

            var ours = TileFeatureFile.Read(outputs.H5);
            var plan = SlideFixtures.CmuDefaultPlan;
            Assert.That(features.GetProperty("dtype").GetString(), Is.EqualTo("float32"));
            Assert.That(features.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()), Is.EqualTo(new long[] { plan.Tiles.Count, PipelineTestData.TileConfig.EmbedDim }));
            Assert.That(File.ReadAllBytes(outputs.H5 + ".features.raw"), Is.EqualTo(MemoryMarshal.AsBytes(ours.Features.AsSpan()).ToArray()));

            Assert.That(coords.GetProperty("dtype").GetString(), Is.EqualTo("int64"));
            Assert.That(coords.GetProperty("shape").EnumerateArray().Select(e => e.GetInt64()), Is.EqualTo(new long[] { plan.Tiles.Count, 2 }));
            var expectedCoords = plan.Tiles.SelectMany(t => new[] { t.Level0X, t.Level0Y }).ToArray();
            Assert.That(MemoryMarshal.Cast<byte, long>(File.ReadAllBytes(outputs.H5 + ".coords.raw")).ToArray(), Is.EqualTo(expectedCoords), "level-0 x, y per tile");

            var attrs = coords.GetProperty("attrs");
            foreach (var (name, json) in CoordsAttributes)
            {
                Assert.That(attrs.TryGetProperty(name, out var value), Is.True, $"coords has no attribute '{name}' (has: {string.Join(", ", attrs.EnumerateObject().Select(p => p.Name))})");
                Assert.That(JsonSerializer.Serialize(value), Is.EqualTo(json.Replace(", ", ",")), name);
            }
            TestContext.Out.WriteLine($"interop: h5py read run's {Path.GetFileName(outputs.H5)}: features float32 [{plan.Tiles.Count}, " +
                $"{PipelineTestData.TileConfig.EmbedDim}], coords int64 [{plan.Tiles.Count}, 2], coords.attrs {string.Join(", ", CoordsAttributes.Select(a => $"{a.Name}={a.Json}"))}");
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
