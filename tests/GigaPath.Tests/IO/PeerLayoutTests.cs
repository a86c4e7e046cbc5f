using GigaPath.IO;
using GigaPath.Models.Slide;
using GigaPath.Tests.Models.Tile;
using GigaPath.Weights;
using NUnit.Framework;
using PureHDF;

namespace GigaPath.Tests.IO;

/// <summary>
/// Feature files written the way TRIDENT and CLAM write them (our own writer following their layouts, read from their
/// sources): TRIDENT's <c>save_h5</c> with the <c>coords_to_h5</c> attributes that <c>extract_patch_features</c> copies
/// onto the features file's <c>coords</c>; CLAM's <c>save_hdf5</c> with <c>process_contour</c>'s patch attributes, and
/// the feature file of <c>extract_features_fp.py</c>, whose int32 <c>coords</c> carry no attributes. The same six tiles
/// at 0.5 µm/px (20x) and 0.25 µm/px (40x, 256-px tiles at 20x covering 512 level-0 pixels).
/// </summary>
public class PeerLayoutTests
{
    private static readonly (int Gx, int Gy)[] Grid = [(0, 0), (1, 0), (2, 0), (0, 1), (2, 1), (5, 3)];
    private const int Dim = 32; // the tiny slide encoder's in_chans
    private string _dir = "";

    [SetUp]
    public void SetUp() => _dir = FixturePaths.TempDir("peer-layouts");

    [TearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    private static float[] Features() =>
        Enumerable.Range(0, Grid.Length * Dim).Select(i => (float)Math.Sin(0.37 * i)).ToArray();

    private static int Step(double slideMpp) => (int)Math.Round(256 * 0.5 / slideMpp);

    private static long[] Level0(double slideMpp) => Grid.SelectMany(g => new long[] { g.Gx * Step(slideMpp), g.Gy * Step(slideMpp) }).ToArray();

    /// <summary>Our pipeline's layout: level-0 coords and coords_tiling.</summary>
    private string WriteOurs(double slideMpp)
    {
        var path = Path.Combine(_dir, $"ours-{slideMpp}.h5");
        var tiles = new TileFeatures(Features(), Grid.Length, Dim, Level0(slideMpp).Select(v => (double)v).ToArray(), new Dictionary<string, object>())
        {
            TilingCoords = Grid.SelectMany(g => new double[] { g.Gx * 256, g.Gy * 256 }).ToArray(),
        };
        TileFeatureFile.WriteH5(path, tiles, new Dictionary<string, object> { ["patch_size_level0"] = (long)Step(slideMpp) });
        return path;
    }

    /// <summary>TRIDENT: datasets chunked one row each, coords int64 with coords_to_h5's attributes, integer magnifications.</summary>
    private string WriteTrident(double slideMpp)
    {
        var path = Path.Combine(_dir, $"trident-{slideMpp}.h5");
        int mag0 = slideMpp < 0.3 ? 40 : 20;
        var features = new H5Dataset(Features(), chunks: [1, Dim], fileDims: [(ulong)Grid.Length, Dim]);
        features.Attributes["name"] = "slide";
        features.Attributes["savetodir"] = "/out/features_gigapath";
        features.Attributes["encoder"] = "gigapath";
        var coords = new H5Dataset(Level0(slideMpp), chunks: [1, 2], fileDims: [(ulong)Grid.Length, 2]);
        coords.Attributes["patch_size"] = 256L;
        coords.Attributes["patch_size_level0"] = 256L * mag0 / 20;
        coords.Attributes["level0_magnification"] = (long)mag0;
        coords.Attributes["target_magnification"] = 20L;
        coords.Attributes["overlap"] = 0L;
        coords.Attributes["name"] = "slide";
        coords.Attributes["savetodir"] = "/out/20x_256px_0px_overlap";
        coords.Attributes["level0_width"] = 4096L;
        coords.Attributes["level0_height"] = 4096L;
        new H5File { ["features"] = features, ["coords"] = coords }.Write(path);
        return path;
    }

    /// <summary>CLAM's patch attributes (process_contour): patch_size at patch_level, that level's downsample pair (CLAM chunks 32 rows; PureHDF wants chunks no larger than the data).</summary>
    private string WriteClamWithPatchAttributes(double slideMpp)
    {
        var path = Path.Combine(_dir, $"clam-{slideMpp}.h5");
        int level = slideMpp < 0.3 ? 1 : 0;
        double ds = level == 1 ? 2.0 : 1.0;
        var coords = new H5Dataset(Level0(slideMpp).Select(v => (int)v).ToArray(), chunks: [(uint)Grid.Length, 2], fileDims: [(ulong)Grid.Length, 2]);
        coords.Attributes["patch_size"] = 256L;
        coords.Attributes["patch_level"] = (long)level;
        coords.Attributes["downsample"] = new[] { ds, ds };
        coords.Attributes["downsampled_level_dim"] = new long[] { 2048, 2048 };
        coords.Attributes["level_dim"] = new long[] { 2048, 2048 };
        coords.Attributes["name"] = "slide";
        coords.Attributes["save_path"] = "/out/patches";
        new H5File { ["features"] = new H5Dataset(Features(), chunks: [(uint)Grid.Length, Dim], fileDims: [(ulong)Grid.Length, Dim]), ["coords"] = coords }.Write(path);
        return path;
    }

    /// <summary>extract_features_fp.py's output: features and int32 coords, no attributes at all.</summary>
    private string WriteClamFeatures(double slideMpp)
    {
        var path = Path.Combine(_dir, $"clam-features-{slideMpp}.h5");
        new H5File
        {
            ["features"] = new H5Dataset(Features(), chunks: [(uint)Grid.Length, Dim], fileDims: [(ulong)Grid.Length, Dim]),
            ["coords"] = new H5Dataset(Level0(slideMpp).Select(v => (int)v).ToArray(), chunks: [(uint)Grid.Length, 2], fileDims: [(ulong)Grid.Length, 2]),
        }.Write(path);
        return path;
    }

    [TestCase(0.5)]
    [TestCase(0.25)]
    public void TridentAndClamFilesGiveOurPositionsAndOurSlideEmbedding(double slideMpp)
    {
        using var encoder = SlideEncoder.Load(FixturePaths.Get("slide_encoder_tiny"));
        var ours = TileFeatureFile.Read(WriteOurs(slideMpp));
        using var expected = encoder.Embed(ours);
        Assert.That(expected.Placement?.Rule, Is.EqualTo(TilePlacementRule.TilingCoordinates));
        Assert.That(expected.Placement?.ToString(), Is.EqualTo("coords_tiling"));
        var cases = new (string File, string Rule)[]
        {
            (WriteTrident(slideMpp), $"patch_size_level0 = {Step(slideMpp)} (TRIDENT)"),
            (WriteClamWithPatchAttributes(slideMpp), slideMpp < 0.3 ? "patch_size 256 × downsample 2 at patch_level 1 (CLAM)" : "patch_size 256 × downsample 1 at patch_level 0 (CLAM)"),
        };
        foreach (var (file, rule) in cases)
        {
            var tiles = TileFeatureFile.Read(file);
            Assert.That(TilePositions.Resolve(tiles, 256).TilingCoords, Is.EqualTo(ours.TilingCoords), file);
            using var encoding = encoder.Embed(tiles);
            Assert.That(encoding.Placement?.ToString(), Does.StartWith(rule), file);
            Assert.That(TinyTileFixture.MaxAbsDiff(encoding.MeanPooledEmbedding, expected.MeanPooledEmbedding), Is.LessThanOrEqualTo(1e-5), file);
            Assert.That(TinyTileFixture.MaxAbsDiff(encoding.LastHiddenState, expected.LastHiddenState), Is.LessThanOrEqualTo(1e-5), file);
        }
    }

    [Test]
    public void AClamFeatureFileWithoutAttributesNamesWhatIsMissingAndTheFlag()
    {
        var tiles = TileFeatureFile.Read(WriteClamFeatures(0.25));
        var error = Assert.Throws<GigaPathException>(() => TilePositions.Resolve(tiles, 256))!.Message;
        Assert.That(error, Does.Contain("coords_tiling").And.Contain("patch_size_level0").And.Contain("patch_size").And.Contain("patch_level")
            .And.Contain("level0TileSize"));
        var given = TilePositions.Resolve(tiles, 256, level0TileSize: 512);
        Assert.That(given.TilingCoords, Is.EqualTo(TileFeatureFile.Read(WriteOurs(0.25)).TilingCoords));
        Assert.That(given.Rule, Does.StartWith("given level-0 tile size 512"));
        Assert.That(given.Placement.Rule, Is.EqualTo(TilePlacementRule.GivenLevel0TileSize));
        Assert.That(given.Placement.Level0Step, Is.EqualTo(512));
        var contradiction = Assert.Throws<GigaPathException>(() => TilePositions.Resolve(TileFeatureFile.Read(WriteTrident(0.25)), 256, level0TileSize: 256))!;
        Assert.That(contradiction.Message, Does.Contain("contradicts the file's own patch_size_level0 = 512"));
    }

    [Test]
    public void EmbedSlideOnATridentFileWritesOurFilesEmbeddingAndSaysWhichRule()
    {
        var model = FixturePaths.Get("slide_encoder_tiny");
        var outputs = new List<SafeTensorsFile>();
        try
        {
            foreach (var input in new[] { WriteOurs(0.25), WriteTrident(0.25) })
            {
                var output = input + ".slide.safetensors";
                Assert.That(GigaPath.Cli.Program.Main(["embed-slide", "--model", model, "--tiles", input, "--out", output]), Is.Zero, input);
                outputs.Add(SafeTensorsFile.Open(output));
            }
            Assert.That(outputs[0].Metadata["positions"], Is.EqualTo("coords_tiling"));
            Assert.That(outputs[1].Metadata["positions"], Is.EqualTo("patch_size_level0 = 512 (TRIDENT): level-0 coords / 512"));
            var (a, _) = outputs[0].ReadFloats("slide_embedding");
            var (b, _) = outputs[1].ReadFloats("slide_embedding");
            Assert.That(a.Zip(b).Max(p => Math.Abs(p.First - p.Second)), Is.LessThanOrEqualTo(1e-5));
            int code = GigaPath.Cli.Program.Main(["embed-slide", "--model", model, "--tiles", WriteClamFeatures(0.25), "--out", Path.Combine(_dir, "clam.safetensors")]);
            Assert.That(code, Is.Not.Zero, "a CLAM feature file without attributes is refused, not embedded on the wrong grid");
            Assert.That(GigaPath.Cli.Program.Main(["embed-slide", "--model", model, "--tiles", WriteClamFeatures(0.25), "--out", Path.Combine(_dir, "clam.safetensors"),
                "--patch-size-level0", "512"]), Is.Zero);
        }
        finally
        {
            foreach (var o in outputs) o.Dispose();
        }
    }

    [Test]
    public void ClamPtFilesAreFeaturesWithoutCoordinates()
    {
        // CLAM's extract_features_fp.py: torch.save(features, pt_files/<slide>.pt), a bare [N, D] float32 tensor.
        var path = Path.Combine(_dir, "slide.pt");
        File.WriteAllBytes(path, TorchSaveWriter.Serialize(Features(), [Grid.Length, Dim]));
        var tiles = TileFeatureFile.Read(path);
        Assert.That((tiles.Count, tiles.Dim, tiles.Coords), Is.EqualTo((Grid.Length, Dim, (double[]?)null)));
        Assert.That(tiles.Features, Is.EqualTo(Features()));
        Assert.That(GigaPath.Training.FeatureFiles.Probe(path).Count, Is.EqualTo(Grid.Length));
        Assert.That(GigaPath.Training.FeatureFiles.Expand(_dir), Does.Contain(path));
        var bag = GigaPath.Training.FeatureFiles.Read(path);
        Assert.That(Assert.Throws<GigaPathException>(() => bag.RequireEncoderCoords())!.Message, Does.Contain("no coords"));

        if (!PythonTorch.IsAvailable) return;
        var real = Path.Combine(_dir, "torch.pt");
        var (code, output) = PythonTorch.Run("import sys, torch; torch.save(torch.arange(12, dtype=torch.float32).reshape(3, 4), sys.argv[1])", [real]);
        Assert.That(code, Is.Zero, output);
        var fromTorch = TileFeatureFile.Read(real);
        Assert.That((fromTorch.Count, fromTorch.Dim), Is.EqualTo((3, 4)));
        Assert.That(fromTorch.Features, Is.EqualTo(Enumerable.Range(0, 12).Select(v => (float)v).ToArray()));
    }
}
