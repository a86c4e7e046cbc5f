using GigaPath.Imaging;
using GigaPath.IO;
using GigaPath.Models.Slide;
using GigaPath.Models.Tile;
using GigaPath.Pipeline;
using GigaPath.Runtime;
using GigaPath.Slides;
using GigaPath.Tests.Models.Tile;
using GigaPath.Tests.Slides;
using GigaPath.Weights;
using NUnit.Framework;
using static TorchSharp.torch;

namespace GigaPath.Tests.Pipeline;

/// <summary>
/// The whole pipeline on the real H&amp;E slide CMU-1-Small-Region with tiny random models: every output checked
/// against the stages run by hand (plan, ReadTile, TileEncoder.Embed, SlideEncoder.Embed).
/// </summary>
public class SlidePipelineTests
{
    private const string Id = "CMU-1-Small-Region";
    private string _dir = "";
    private TileEncoder _tile = null!;
    private SlideEncoder _slide = null!;
    private SlideManifest _manifest = null!;
    private SlideOutputs _outputs = null!;
    private TileFeatures _h5 = null!;

    [OneTimeSetUp]
    public void RunOnce()
    {
        _dir = FixturePaths.TempDir("pipeline-e2e");
        _tile = PipelineTestData.TileEncoder();
        _slide = PipelineTestData.SlideEncoder();
        _outputs = new SlideOutputs(Path.Combine(_dir, "main"), Id);
        _manifest = Pipeline(new PipelineOptions { BatchSize = 16, Readers = 4 })
            .Process(new SlideJob(Id, SlideFixtures.CmuSmallRegion), _outputs);
        _h5 = TileFeatureFile.Read(_outputs.H5);
    }

    [OneTimeTearDown]
    public void TearDown()
    {
        _tile.Dispose();
        _slide.Dispose();
        Directory.Delete(_dir, true);
    }

    private SlidePipeline Pipeline(PipelineOptions options) => new(_tile, _slide, options);

    private static TilingPlan Plan => SlideFixtures.CmuDefaultPlan;

    [Test]
    public void TileFeaturesAreTheEncoderOnTheTilesReadDirectly()
    {
        Assert.That(_h5.Count, Is.EqualTo(Plan.Tiles.Count).And.EqualTo(48));
        Assert.That(_h5.Dim, Is.EqualTo(PipelineTestData.TileConfig.EmbedDim));

        using var slide = SlideOpener.Open(SlideFixtures.CmuSmallRegion);
        var pre = TilePreprocessor.Default;
        using var scope = NewDisposeScope();
        var expected = new List<Tensor>();
        for (int start = 0; start < Plan.Tiles.Count; start += 16)
        {
            var batch = pre.ToBatch(Plan.Tiles.Skip(start).Take(16).Select(t => pre.Preprocess(TilingPlanner.ReadTile(slide, Plan, t))).ToList());
            expected.Add(_tile.Embed(batch).Embeddings);
        }
        var direct = cat(expected, 0);
        var written = tensor(_h5.Features, [_h5.Count, _h5.Dim]);
        double diff = TinyTileFixture.MaxAbsDiff(written, direct);
        TestContext.Out.WriteLine($"h5 features vs TileEncoder.Embed of ReadTile: max abs diff {diff:E2}");
        Assert.That(diff, Is.EqualTo(0), "same tiles, same batches: the same numbers");
    }

    [Test]
    public void CoordinatesFollowTheContract()
    {
        var c0 = _h5.Coords!;
        var ct = _h5.TilingCoords!;
        for (int i = 0; i < Plan.Tiles.Count; i++)
        {
            var t = Plan.Tiles[i];
            Assert.That((c0[2 * i], c0[2 * i + 1]), Is.EqualTo(((double)t.Level0X, (double)t.Level0Y)), $"level-0 coords of tile {i}");
            Assert.That((ct[2 * i], ct[2 * i + 1]), Is.EqualTo(((double)t.GridX * 256, (double)t.GridY * 256)), $"tiling coords of tile {i}");
            if (i > 0)
                Assert.That(ct[2 * i + 1] > ct[2 * i - 1] || (ct[2 * i + 1] == ct[2 * i - 1] && ct[2 * i] > ct[2 * i - 2]), Is.True, "row-major order");
        }
        // Neighbours in a row are exactly one tile apart at the tiling resolution.
        var steps = Enumerable.Range(1, _h5.Count - 1).Where(i => ct[2 * i + 1] == ct[2 * i - 1]).Select(i => ct[2 * i] - ct[2 * i - 2]);
        Assert.That(steps.Min(), Is.EqualTo(256));
        Assert.That(_h5.Attributes["patch_size"], Is.EqualTo(256L));
        Assert.That(_h5.Attributes["patch_level"], Is.EqualTo(0L));
        Assert.That(_h5.Attributes["target_mpp"], Is.EqualTo(0.5));
        Assert.That(_h5.Attributes["slide_mpp"], Is.EqualTo(0.499));
        Assert.That(_h5.Attributes["mpp_source"], Is.EqualTo("metadata"));
    }

    [Test]
    public void SlideOutputsAreTheSlideEncoderOnTheH5Contents()
    {
        using var scope = NewDisposeScope();
        using var expected = _slide.Embed(_h5);
        using var file = SafeTensorsFile.Open(_outputs.SlideEmbedding);
        Assert.That(file.Names, Is.EquivalentTo(new[] { "slide_embedding", "last_hidden_state", "tile_embeddings_ctx" }));
        Assert.That(file.Metadata["pool"], Is.EqualTo("mean"));
        Assert.That(TinyTileFixture.MaxAbsDiff(file.Load("slide_embedding"), expected.MeanPooledEmbedding), Is.EqualTo(0));
        Assert.That(TinyTileFixture.MaxAbsDiff(file.Load("last_hidden_state"), expected.LastHiddenState), Is.EqualTo(0));
        Assert.That(TinyTileFixture.MaxAbsDiff(file.Load("tile_embeddings_ctx"), expected.ContextualTileEmbeddings), Is.EqualTo(0));
        Assert.That(file.GetInfo("last_hidden_state").Shape, Is.EqualTo(new long[] { 1, 49, 32 }));
    }

    [Test]
    public void ManifestRecordsProvenanceAndTimings()
    {
        var m = SlideManifest.Read(_outputs.Manifest);
        Assert.That(m.ToJson(), Is.EqualTo(_manifest.ToJson()), "written manifest = returned manifest");
        Assert.That(m.SlideId, Is.EqualTo(Id));
        Assert.That(m.Engine.Version, Is.EqualTo(EngineInfo.Version));
        Assert.That(m.Engine.OpenSlideVersion, Is.EqualTo(OpenSlideSlide.LibraryVersion));
        Assert.That(m.Slide.Sha256, Is.EqualTo("ed92d5a9f2e86df67640d6f92ce3e231419ce127131697fbbce42ad5e002c8a7"), "fixture README");
        Assert.That(m.Slide.SizeBytes, Is.EqualTo(1938955));
        Assert.That((m.Slide.Vendor, m.Slide.Level0Width, m.Slide.Level0Height), Is.EqualTo(("aperio", 2220L, 2967L)));
        Assert.That((m.Tiling.SlideMpp, m.Tiling.MppSource, m.Tiling.Level, m.Tiling.ReadSize), Is.EqualTo((0.499, "metadata", 0, 256)));
        Assert.That((m.Tiling.TileCount, m.Tiling.PlannedTiles, m.Tiling.TissueMethod), Is.EqualTo((48, 48, "luminance")));
        Assert.That(m.TileModel.Sha256, Is.EqualTo(_tile.WeightsSha256));
        Assert.That(m.SlideModel!.Sha256, Is.EqualTo(_slide.WeightsSha256));
        Assert.That(m.Settings, Is.EqualTo(Pipeline(new PipelineOptions()).SettingsFor(new SlideJob(Id, SlideFixtures.CmuSmallRegion))));
        foreach (var (role, file) in _outputs.Files)
        {
            Assert.That(m.Outputs[role].SizeBytes, Is.EqualTo(new FileInfo(file).Length), role);
            Assert.That(m.Outputs[role].Sha256, Is.EqualTo(FileHashing.Sha256(file)), role);
        }
        var t = m.Timings;
        Assert.That(t.TileEncoderSeconds, Is.GreaterThan(0).And.LessThanOrEqualTo(t.TilesSeconds));
        Assert.That(t.TilesSeconds, Is.LessThanOrEqualTo(t.TotalSeconds));
        Assert.That(t.TilesPerSecondTileEncoderOnly, Is.EqualTo(48 / t.TileEncoderSeconds).Within(0.5).Percent);
        Assert.That((t.BatchSize, t.Readers), Is.EqualTo((16, 4)));
        Assert.That(_outputs.Incomplete(m.Settings), Is.Null, "complete");
    }

    [Test]
    public void ThumbnailIsAPngOfTheSlide()
    {
        var thumb = ImageDecoder.DecodeFile(_outputs.Thumbnail);
        Assert.That(Math.Max(thumb.Width, thumb.Height), Is.EqualTo(1024));
        Assert.That(thumb.Width / (double)thumb.Height, Is.EqualTo(2220 / 2967.0).Within(0.01));
    }

    [Test]
    public void ResultsDoNotDependOnReadersAndBatchSize()
    {
        var oneReader = new SlideOutputs(Path.Combine(_dir, "r1"), Id);
        Pipeline(new PipelineOptions { BatchSize = 16, Readers = 1 }).Process(new SlideJob(Id, SlideFixtures.CmuSmallRegion), oneReader);
        Assert.That(TileFeatureFile.Read(oneReader.H5).Features, Is.EqualTo(_h5.Features), "readers only change who reads");
        Assert.That(File.ReadAllBytes(oneReader.SlideEmbedding), Is.EqualTo(File.ReadAllBytes(_outputs.SlideEmbedding)));

        var batch5 = new SlideOutputs(Path.Combine(_dir, "b5"), Id);
        Pipeline(new PipelineOptions { BatchSize = 5, Readers = 3, QueueBatches = 1 }).Process(new SlideJob(Id, SlideFixtures.CmuSmallRegion), batch5);
        var other = TileFeatureFile.Read(batch5.H5);
        double diff = _h5.Features.Zip(other.Features, (a, b) => (double)Math.Abs(a - b)).Max();
        TestContext.Out.WriteLine($"batch 16 vs batch 5: max abs diff {diff:E2}");
        Assert.That(diff, Is.LessThanOrEqualTo(1e-6));
        Assert.That(other.Coords, Is.EqualTo(_h5.Coords));
    }

    [Test]
    public void CoarserTargetKeepsLevel0AndTilingCoordinatesApart()
    {
        // At 1 µm/px each tile covers 513 level-0 pixels, but the slide encoder still sees neighbours 256 apart.
        var outputs = new SlideOutputs(Path.Combine(_dir, "1um"), Id);
        var options = new PipelineOptions { Tiling = new TilingOptions { TargetMpp = 1.0 }, AllLayers = true, Pooling = SlidePooling.Cls };
        var manifest = Pipeline(options).Process(new SlideJob(Id, SlideFixtures.CmuSmallRegion), outputs);
        Assert.That((manifest.Tiling.ReadSize, manifest.Tiling.Resampled), Is.EqualTo((513, true)));
        var h5 = TileFeatureFile.Read(outputs.H5);
        for (int i = 0; i < h5.Count; i++)
            Assert.That(h5.Coords![2 * i], Is.EqualTo(h5.TilingCoords![2 * i] / 256 * 513), $"tile {i}");
        Assert.That(h5.Attributes["patch_size_level0"], Is.EqualTo(513L));

        using var scope = NewDisposeScope();
        using var expected = _slide.Embed(h5, allLayers: true);
        using var file = SafeTensorsFile.Open(outputs.SlideEmbedding);
        Assert.That(TinyTileFixture.MaxAbsDiff(file.Load("slide_embedding"), expected.ClsEmbedding), Is.EqualTo(0), "--pool cls");
        for (int i = 0; i <= PipelineTestData.SlideConfig.Depth; i++)
            Assert.That(TinyTileFixture.MaxAbsDiff(file.Load($"layer_{i}"), expected.ClsLayerEmbeddings![i]), Is.EqualTo(0), $"layer_{i}");
        using var viaAttributes = _slide.Embed(h5 with { TilingCoords = null });
        Assert.That(viaAttributes.Placement?.ToString(), Does.StartWith("patch_size_level0 = 513 (TRIDENT)"));
        Assert.That(TinyTileFixture.MaxAbsDiff(file.Load("last_hidden_state"), viaAttributes.LastHiddenState), Is.EqualTo(0),
            "without coords_tiling, TRIDENT's patch_size_level0 puts the tiles on the same grid");
        using var x = tensor(h5.Features, [h5.Count, h5.Dim]);
        using var c = tensor(h5.Coords!, [h5.Count, 2]);
        using var level0 = _slide.Embed(x, c);
        Assert.That(TinyTileFixture.MaxAbsDiff(file.Load("last_hidden_state"), level0.LastHiddenState), Is.GreaterThan(1e-3),
            "level-0 coordinates taken as positions would place the tiles on another grid");
    }

    [Test]
    public void SavedTilesAreNamedLikeTheReferenceTilerAndHoldTheTilePixels()
    {
        var outputs = new SlideOutputs(Path.Combine(_dir, "saved"), Id);
        var manifest = Pipeline(new PipelineOptions { SaveTiles = true, MaxTiles = 6 }).Process(new SlideJob(Id, SlideFixtures.CmuSmallRegion), outputs);
        Assert.That((manifest.Tiling.TileCount, manifest.Tiling.PlannedTiles), Is.EqualTo((6, 48)));
        var names = Directory.GetFiles(outputs.TilesDir).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        var expected = Plan.Tiles.Take(6).Select(t => $"{t.Level0X:D5}x_{t.Level0Y:D5}y.png").Order(StringComparer.Ordinal).ToList();
        Assert.That(names, Is.EqualTo(expected));
        Assert.That(manifest.SavedTiles!.Count, Is.EqualTo(6));
        using var slide = SlideOpener.Open(SlideFixtures.CmuSmallRegion);
        var first = Plan.Tiles[0];
        Assert.That(ImageDecoder.DecodeFile(Path.Combine(outputs.TilesDir, SlideTiling.TileFileName(first))).Pixels,
            Is.EqualTo(slide.ReadRegion(first.Level0X, first.Level0Y, 0, 256, 256).Pixels));
        Assert.That(TileFeatureFile.Read(outputs.H5).Count, Is.EqualTo(6));
    }

    [Test]
    public void MismatchedModelPairIsRefused()
    {
        using var wide = SlideEncoder.CreateRandom(PipelineTestData.SlideConfig with { InputChannels = 48 });
        var e = Assert.Throws<GigaPathException>(() => _ = new SlidePipeline(_tile, wide, new PipelineOptions()));
        Assert.That(e!.Message, Does.Contain("48-wide").And.Contain("32-wide"));
    }
}
