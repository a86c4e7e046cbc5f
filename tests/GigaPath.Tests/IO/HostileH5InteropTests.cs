using System.Net;
using System.Net.Http.Headers;
using GigaPath.IO;
using GigaPath.Server.Scoring;
using GigaPath.Server.Slide;
using GigaPath.Tests.Cli;
using GigaPath.Tests.Server;
using NUnit.Framework;

namespace GigaPath.Tests.IO;

/// <summary>
/// Issue 25, classes 1, 2 and 7: HDF5 feature files built with h5py (so libhdf5 itself lays them out) that reach
/// outside themselves, recurse, or are valid but unusual. Each case is generated here (a few KB; the 6,000-link chain
/// 727 KB), with its expected outcome: refused in one line naming the file, the dataset and the link or filter
/// (<see cref="Hdf5StructureException"/>; the CLI exits 2, the server answers 400), or read with the right values.
/// </summary>
[Category(PythonTorch.Category)]
public class HostileH5InteropTests
{
    /// <summary>Writes case argv[1] to argv[2]; the features are arange(80)/8 as [10, 8], coords arange(20)*256 as [10, 2].</summary>
    private const string Generator = """
import sys, os, h5py, numpy as np
kind, path = sys.argv[1], sys.argv[2]
d = os.path.dirname(path)
feats = np.arange(10 * 8, dtype=np.float32).reshape(10, 8) / 8
coords = np.arange(20, dtype=np.int64).reshape(10, 2) * 256
other = os.path.join(d, 'other.h5')
with h5py.File(other, 'w') as o:
    o['features'] = feats + 100; o['coords'] = coords + 1
with h5py.File(path, 'w') as f:
    if kind == 'external-absolute': f['features'] = h5py.ExternalLink(os.path.abspath(other), '/features')
    elif kind == 'external-relative': f['features'] = h5py.ExternalLink('../' + os.path.basename(d) + '/other.h5', '/features')
    elif kind == 'external-coords-tiling': f['features'] = feats; f['coords'] = coords; f['coords_tiling'] = h5py.ExternalLink(os.path.abspath(other), '/coords')
    elif kind == 'external-self': f['features'] = h5py.ExternalLink(os.path.basename(path), '/features')
    elif kind == 'external-passwd': f['features'] = h5py.ExternalLink('/etc/passwd', '/features')
    elif kind == 'virtual':
        layout = h5py.VirtualLayout(shape=(10, 8), dtype='f4'); layout[:] = h5py.VirtualSource(other, 'features', shape=(10, 8))
        f.create_virtual_dataset('features', layout)
    elif kind == 'external-storage':
        raw = os.path.join(d, 'raw.bin'); (feats + 5).tofile(raw)
        f.create_dataset('features', shape=(10, 8), dtype='f4', external=[(raw, 0, feats.nbytes)])
    elif kind == 'soft-self': f['features'] = h5py.SoftLink('/features')
    elif kind == 'soft-cycle': f['features'] = h5py.SoftLink('/a'); f['a'] = h5py.SoftLink('features')
    elif kind == 'soft-chain':
        for i in range(6000): f['l%d' % i] = h5py.SoftLink('/l%d' % (i + 1))
        f['features'] = h5py.SoftLink('/l0')
    elif kind == 'soft-valid': f['data/real'] = feats; f['features'] = h5py.SoftLink('/data/real'); f['coords'] = h5py.SoftLink('data/xy'); f['data/xy'] = coords
    elif kind == 'big-endian-f4': f.create_dataset('features', data=feats.astype('>f4')); f.create_dataset('coords', data=coords.astype('>i8'))
    elif kind == 'big-endian-f8': f.create_dataset('features', data=feats.astype('>f8')); f.create_dataset('coords', data=coords.astype('>f8'))
    elif kind == 'lzf': f.create_dataset('features', data=feats, compression='lzf')
    elif kind == 'szip': f.create_dataset('features', data=feats, compression='szip')
    elif kind == 'group': f.create_group('features')['x'] = feats
    elif kind == 'huge-chunk': f.create_dataset('features', shape=(10, 192), maxshape=(None, 192), chunks=(5000000, 192), dtype='f4')
    elif kind == 'big-endian-attribute':
        f['features'] = feats; f['coords'] = coords; f['coords'].attrs['patch_size_level0'] = np.array(256, dtype='>i8')
        f['coords'].attrs['downsample'] = np.array([2.0, 2.5], dtype='>f8'); f.attrs['level0_width'] = np.array(7000, dtype='>i4')
    elif kind == 'gzip-shuffle-fletcher': f.create_dataset('features', data=feats, compression='gzip', shuffle=True, fletcher32=True); f['coords'] = coords
    else: raise SystemExit('unknown kind ' + kind)
print(os.path.getsize(path))
""";

    private string _dir = "";

    [SetUp]
    public void SetUp()
    {
        PythonTorch.RequireOrIgnore("h5py");
        _dir = FixturePaths.TempDir("hostile-h5");
    }

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    private string Generate(string kind)
    {
        var path = Path.Combine(_dir, kind + ".h5");
        var (code, output) = PythonTorch.Run(Generator, [kind, path], "h5py");
        if (code != 0 && kind == "szip" && output.Contains("szip", StringComparison.OrdinalIgnoreCase))
            Assert.Ignore("this h5py has no szip encoder: " + output.Trim().Split('\n')[^1]);
        Assert.That(code, Is.Zero, output);
        TestContext.Out.WriteLine($"interop: h5py wrote the '{kind}' feature file ({output.Trim()} bytes)");
        return path;
    }

    private static readonly float[] Features = Enumerable.Range(0, 80).Select(i => i / 8f).ToArray();
    private static readonly double[] Coords = Enumerable.Range(0, 20).Select(i => i * 256.0).ToArray();

    [TestCase("external-absolute", "dataset 'features' is an external link to '/", "other.h5' (object '/features')")]
    [TestCase("external-relative", "dataset 'features' is an external link to '../", "links to other files are not followed")]
    [TestCase("external-coords-tiling", "dataset 'coords_tiling' is an external link to '/", "other.h5' (object '/coords')")]
    [TestCase("external-self", "dataset 'features' is an external link to 'external-self.h5'", "not followed")]
    [TestCase("external-passwd", "dataset 'features' is an external link to '/etc/passwd'", "not followed")]
    [TestCase("virtual", "dataset 'features' is a virtual dataset", "only data stored in the dataset is read")]
    [TestCase("external-storage", "dataset 'features' stores its data in external files", "only data inside the file is read")]
    [TestCase("soft-self", "dataset 'features' is a soft link that leads back to itself", "a link cycle")]
    [TestCase("soft-cycle", "dataset 'features' is a soft link that leads back to itself", "a link cycle")]
    [TestCase("soft-chain", "dataset 'features' goes through more than 16 soft links", "at most 16 are followed")]
    [TestCase("lzf", "dataset 'features' is compressed with the HDF5 filter 'lzf' (id 32000)", "rewrite it with gzip")]
    [TestCase("szip", "dataset 'features' is compressed with the HDF5 filter 'szip' (id 4)", "rewrite it with gzip")]
    [TestCase("group", "dataset 'features' is a group ('/features'), not a dataset", "")]
    [TestCase("huge-chunk", "dataset 'features' has chunks of 3,840,000,000 bytes for 7,680 bytes of data", "16 MiB")]
    public void RefusedNamingTheDatasetAndWhatIsRefused(string kind, string fragment, string more)
    {
        var path = Generate(kind);
        Hdf5StructureException? e = null;
        long allocated = Reliability.HostileInputs.AllocatedBy(() => e = Assert.Throws<Hdf5StructureException>(() => TileFeatureFile.Read(path)));
        TestContext.Out.WriteLine(e!.Message);
        Assert.That(e.Message, Does.StartWith(path + ": ").And.Contain(fragment).And.Contain(more));
        Assert.That(e.Message, Does.Not.Contain("\n"), "one line");
        Assert.That(allocated, Is.LessThan(32L << 20), "refused from the file's structure, nothing materialised");
        // The training/prediction probe and the budget check take the same path.
        Assert.Throws<Hdf5StructureException>(() => GigaPath.Training.FeatureFiles.Probe(path));
    }

    [Test]
    public void BigEndianAttributesAreConverted()
    {
        // PureHDF converts no byte order for attributes: they are decoded from the object header instead.
        var tiles = TileFeatureFile.Read(Generate("big-endian-attribute"));
        Assert.That(tiles.Attributes["patch_size_level0"], Is.EqualTo(256L));
        Assert.That(tiles.Attributes["downsample"], Is.EqualTo(new[] { 2.0, 2.5 }));
        Assert.That(tiles.Attributes["level0_width"], Is.EqualTo(7000L), "a root attribute");
        Assert.That(tiles.Features, Is.EqualTo(Features));
    }

    [TestCase("soft-valid")]
    [TestCase("big-endian-f4")]
    [TestCase("big-endian-f8")]
    [TestCase("gzip-shuffle-fletcher")]
    public void ValidButUnusualFilesReadTheirValues(string kind)
    {
        var path = Generate(kind);
        var tiles = TileFeatureFile.Read(path);
        Assert.That(tiles.Features, Is.EqualTo(Features), "features, converted to float32 little-endian where stored otherwise");
        Assert.That(tiles.Coords, Is.EqualTo(Coords));
    }

    [Test]
    public async Task ScoreSlideAnswers400ForEachAndStaysUp()
    {
        // The server used to die on a soft-link cycle ("Stack overflow") and answer 200 with another file's embedding
        // for an external link or a virtual dataset.
        var options = ServerHarness.Options(o => o with { SlideModelDir = FixturePaths.Get("slide_encoder_tiny") });
        await using var h = await ServerHarness.StartAsync(options, TileEncoderBackend.Load, SlideEncoderBackend.Load);
        foreach (var (kind, fragment) in new[]
        {
            ("soft-self", "a link cycle"), ("soft-chain", "more than 16 soft links"), ("external-absolute", "is an external link to"),
            // The server's error bodies carry no file system paths (issue 25): the target is named by its last name.
            ("external-passwd", "is an external link to 'passwd'"), ("virtual", "is a virtual dataset"), ("lzf", "'lzf' (id 32000)"),
        })
        {
            var content = new ByteArrayContent(File.ReadAllBytes(Generate(kind)));
            content.Headers.ContentType = new MediaTypeHeaderValue("application/x-hdf5");
            using var response = await h.Client.PostAsync("/score/slide", content);
            var body = await response.Content.ReadAsStringAsync();
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest), $"{kind}: {body}");
            Assert.That(ServerHarness.ReadError(response, body).Error, Does.StartWith("request body: dataset '").And.Contain(fragment), kind);
            Assert.That(body, Does.Not.Contain("   at ").And.Not.Contain("/etc/"), "no stack trace, no server path");
        }
        using var health = await h.Client.GetAsync("/health");
        Assert.That(health.StatusCode, Is.EqualTo(HttpStatusCode.OK), "still serving");
    }

    [Test]
    public void EmbedSlideAndPcaExitWith2OnALinkCycleAndAnExternalLink()
    {
        var cycle = Generate("soft-self");
        var pca = CliInvocation.Run("pca", "--features", cycle, "--out", Path.Combine(_dir, "pca.png"));
        Assert.That(pca.ExitCode, Is.EqualTo(2), pca.ToString());
        Assert.That(pca.Error, Does.StartWith("error: " + cycle).And.Contain("link cycle").And.Not.Contain("   at "));
        Assert.That(File.Exists(Path.Combine(_dir, "pca.png")), Is.False);

        var external = Generate("external-absolute");
        var embed = CliInvocation.Run("embed-slide", "--model", FixturePaths.Get("slide_encoder_tiny"), "--tiles", external,
            "--out", Path.Combine(_dir, "out.safetensors"));
        Assert.That(embed.ExitCode, Is.EqualTo(2), embed.ToString());
        Assert.That(embed.Error, Does.StartWith("error: " + external).And.Contain("external link").And.Not.Contain("   at "));
        Assert.That(File.Exists(Path.Combine(_dir, "out.safetensors")), Is.False);
    }
}
