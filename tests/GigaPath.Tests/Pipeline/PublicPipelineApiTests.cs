using System.Text.Json;
using GigaPath.Imaging;
using GigaPath.IO;
using GigaPath.Models.Tile;
using GigaPath.Pipeline;
using GigaPath.Runtime;
using GigaPath.Slides;
using GigaPath.Tests.Slides;
using GigaPath.Weights;
using NUnit.Framework;

namespace GigaPath.Tests.Pipeline;

/// <summary>
/// The slide, tiling and cohort API as a .NET caller (and the CLI) sees it: only public members, checked on the values
/// they return and the files they write.
/// </summary>
public class PublicPipelineApiTests
{
    private string _dir = "";

    [OneTimeSetUp]
    public void SetUp() => _dir = FixturePaths.TempDir("public-pipeline-api");

    [OneTimeTearDown]
    public void TearDown() => Directory.Delete(_dir, true);

    [Test]
    public async Task CohortRunnerRunsAsyncReportsProgressAndResumes()
    {
        var slidePath = PipelineTestData.WriteCrop(Path.Combine(_dir, "crop.png"), 700, 1100);
        var jobs = CohortInputs.Expand([slidePath]).Select(j => j with { SlideMpp = 0.5 }).ToList();
        Assert.That(jobs.Select(j => j.SlideId), Is.EqualTo(new[] { "crop" }));
        using var slide = SlideOpener.Open(slidePath, 0.5);
        var plan = TilingPlanner.Plan(slide, new TilingOptions { SlideMpp = 0.5 });

        using var tileEncoder = PipelineTestData.TileEncoder();
        using var slideEncoder = PipelineTestData.SlideEncoder();
        var cohort = new CohortOptions { OutputDirectory = Path.Combine(_dir, "run") };
        var runner = new CohortRunner(tileEncoder, slideEncoder, new PipelineOptions { BatchSize = 4 }, cohort);
        var recorder = new PipelineTestData.Recorder();
        var summary = await runner.RunAsync(jobs, recorder);

        var outcome = summary.Outcomes.Single();
        Assert.That((outcome.Status, outcome.Message), Is.EqualTo((SlideStatus.Done, (string?)null)));
        Assert.That(outcome.TileCount, Is.EqualTo(plan.Tiles.Count));
        Assert.That(summary.TilesComputed, Is.EqualTo(plan.Tiles.Count));
        Assert.That(summary.HasFailures, Is.False);
        Assert.That(recorder.Events.First(), Is.EqualTo("start crop 1/1"));
        Assert.That(recorder.Events.Last(), Is.EqualTo("Done crop"));
        Assert.That(recorder.Events, Does.Contain($"tiles crop {plan.Tiles.Count}/{plan.Tiles.Count}"));

        // The .h5 holds the plan's tiles: level-0 coords, tiling coords and the patch attributes readers use.
        var h5 = TileFeatureFile.Read(Path.Combine(cohort.OutputDirectory, "crop.h5"));
        Assert.That(h5.Coords, Is.EqualTo(plan.Tiles.SelectMany(t => new double[] { t.Level0X, t.Level0Y }).ToArray()));
        Assert.That(h5.TilingCoords, Is.EqualTo(plan.Tiles.SelectMany(t => new double[] { t.TilingX, t.TilingY }).ToArray()));
        Assert.That(PatchAttributes.Level0Step(h5.Attributes)?.Step, Is.EqualTo(plan.Level0Step));

        var again = runner.Run(jobs, observer: null);
        Assert.That(again.Outcomes.Single().Status, Is.EqualTo(SlideStatus.Skipped));
        Assert.That(again.Count(SlideStatus.Skipped), Is.EqualTo(1));
        Assert.That(cohort.FailureRecordDirectory, Is.EqualTo(Path.Combine(Path.GetFullPath(cohort.OutputDirectory), "failed")));
    }

    [Test]
    public void SlideTilingWritesThePlanItReturns()
    {
        var slidePath = PipelineTestData.WriteCrop(Path.Combine(_dir, "tiled.png"), 0, 0, 1024);
        var outDir = Path.Combine(_dir, "tiling");
        var plan = SlideTiling.Write(new SlideJob("tiled", slidePath, 0.5), new TilingOptions { TissueMethod = TissueMethod.None }, outDir, saveTiles: true, readers: 2);

        Assert.That((plan.GridColumns, plan.GridRows, plan.Tiles.Count), Is.EqualTo((4, 4, 16)), "every whole tile without tissue detection");
        Assert.That((plan.MppSource, plan.TissueThreshold), Is.EqualTo((MppSource.Override, (double?)null)));
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "tiled.plan.json")));
        var tiles = json.RootElement.GetProperty("tiles");
        Assert.That(tiles.GetArrayLength(), Is.EqualTo(16));
        Assert.That((tiles[5].GetProperty("x").GetInt64(), tiles[5].GetProperty("y").GetInt64()), Is.EqualTo((plan.Tiles[5].Level0X, plan.Tiles[5].Level0Y)));
        Assert.That(Directory.GetFiles(Path.Combine(outDir, "tiled.tiles"), "*.png"), Has.Length.EqualTo(16));
        var thumbnail = ImageDecoder.DecodeFile(Path.Combine(outDir, "tiled.thumbnail.png"));
        Assert.That((thumbnail.Width, thumbnail.Height), Is.EqualTo((1024, 1024)));
    }

    [Test]
    public void PlanReportsTheTissueThreshold()
    {
        var plan = SlideFixtures.CmuDefaultPlan;
        Assert.That(plan.TissueThreshold, Is.Not.Null.And.InRange(1.0, 254.0));
        Assert.That(plan.TissueThreshold, Is.EqualTo(plan.Mask!.Threshold));
    }

    [Test]
    public void ShardsParseAndRefuseOutOfRange()
    {
        Assert.That(ShardSpec.TryParse("1/3", out var shard), Is.True);
        Assert.That((shard.Index, shard.Count, shard.ToString()), Is.EqualTo((1, 3, "1/3")));
        Assert.That(ShardSpec.TryParse("3/3", out _), Is.False);
        Assert.That(ShardSpec.TryParse(null, out _), Is.False);
        Assert.That(Assert.Throws<GigaPathException>(() => ShardSpec.Parse("x"))!.Message, Does.Not.Contain("--"), "no CLI flag in a library message");
        Assert.Throws<ArgumentOutOfRangeException>(() => _ = new ShardSpec(3, 3));
        Assert.Throws<ArgumentOutOfRangeException>(() => CohortInputs.Shard([new SlideJob("a", "a.svs")], default));
    }

    [Test]
    public void SavePngRoundTripsAndLeavesNoTemporaryFile()
    {
        var dir = Path.Combine(_dir, "png");
        var image = new RgbImage(3, 2, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18]);
        var path = Path.Combine(dir, "image.png");
        image.SavePng(path);
        Assert.That(ImageDecoder.DecodeFile(path).Pixels, Is.EqualTo(image.Pixels));
        Assert.That(Directory.GetFiles(dir), Is.EqualTo(new[] { path }));
    }

    [Test]
    public async Task TileEmbeddingWritesTheEncoderOutputsWithCoordinates()
    {
        var tiles = Directory.CreateDirectory(Path.Combine(_dir, "tiles")).FullName;
        using var slide = SlideOpener.Open(SlideFixtures.CmuSmallRegion);
        var files = new[] { (512L, 256L), (768L, 256L) }
            .Select(p => { var f = Path.Combine(tiles, $"{p.Item1:D5}x_{p.Item2:D5}y.png"); slide.ReadRegion(p.Item1, p.Item2, 0, 224, 224).SavePng(f); return f; })
            .ToList();
        var output = Path.Combine(_dir, "tiles.safetensors");
        var progress = new List<TileProgress>();
        var summary = await TileEmbedding.ExecuteAsync(new TileEmbeddingRequest { ModelDirectory = PipelineTestData.TileModelDir, OutputPath = output, Images = [tiles] },
            new SynchronousProgress(progress.Add));

        Assert.That((summary.TileCount, summary.Dimension, summary.HasCoordinates, summary.HasTokens), Is.EqualTo((2, 32, true, false)));
        Assert.That(progress.Last(), Is.EqualTo(progress.Last() with { Done = 2, Total = 2 }));
        using var file = SafeTensorsFile.Open(output);
        using var coords = file.Load("coords");
        Assert.That(coords.data<long>().ToArray(), Is.EqualTo(new long[] { 512, 256, 768, 256 }));
        using var encoder = PipelineTestData.TileEncoder();
        using var expected = encoder.EmbedImages(files);
        using var written = file.Load("embeddings");
        Assert.That(written.data<float>().ToArray(), Is.EqualTo(expected.Embeddings.data<float>().ToArray()).Within(1e-5));
    }

    [Test]
    public void MachineReportReadsAsTextAndJson()
    {
        var report = MachineReport.Collect();
        Assert.That(report.ToText(), Does.Contain("CPU:").And.Contain(EngineInfo.Version));
        using var json = JsonDocument.Parse(report.ToJsonText());
        Assert.That(json.RootElement.GetProperty("cpu").GetProperty("logical_cores").GetInt32(), Is.EqualTo(Environment.ProcessorCount));
        Assert.That(json.RootElement.GetProperty("probe").ValueKind, Is.EqualTo(JsonValueKind.Null), "no probe unless asked");
    }

    private sealed class SynchronousProgress(Action<TileProgress> report) : IProgress<TileProgress>
    {
        public void Report(TileProgress value) => report(value);
    }
}
