using GigaPath.Imaging;
using GigaPath.Models.Slide;
using GigaPath.Models.Tile;
using GigaPath.Pipeline;
using GigaPath.Slides;
using GigaPath.Tests.Slides;

namespace GigaPath.Tests.Pipeline;

/// <summary>Tiny random model pairs and small slides for pipeline tests (seconds, not minutes).</summary>
internal static class PipelineTestData
{
    public static readonly TileEncoderConfig TileConfig = new TileEncoderConfig
    {
        ImageSize = 224,
        PatchSize = 16,
        EmbedDim = 32,
        Depth = 2,
        HeadCount = 2,
        MlpRatio = 4,
        LayerScaleInit = 0.1,
        SourceName = "pipeline test tile encoder",
    }.Validate();

    public static readonly SlideEncoderConfig SlideConfig = new SlideEncoderConfig
    {
        InputChannels = 32,
        EmbedDim = 32,
        Depth = 2,
        HeadCount = 2,
        FeedForwardDim = 64,
        SegmentLengths = [16, 32, 64],
        DilationRatios = [1, 2, 4],
        SourceName = "pipeline test slide encoder",
    }.Validate();

    public static TileEncoder TileEncoder() => GigaPath.Models.Tile.TileEncoder.CreateRandom(TileConfig, 11);

    public static SlideEncoder SlideEncoder() => GigaPath.Models.Slide.SlideEncoder.CreateRandom(SlideConfig, 12);

    private static readonly Lazy<string> Saved = new(() =>
    {
        var dir = FixturePaths.TempDir("gigapath-pipeline-models");
        using (var tile = TileEncoder()) tile.Save(Path.Combine(dir, "tile"));
        using (var slide = SlideEncoder()) slide.Save(Path.Combine(dir, "slide"));
        return dir;
    });

    /// <summary>The same models saved (once per test run) for tests that go through the CLI.</summary>
    public static string TileModelDir => Path.Combine(Saved.Value, "tile");

    public static string SlideModelDir => Path.Combine(Saved.Value, "slide");

    /// <summary>A size × size crop of CMU-1-Small-Region (real H&amp;E) at level-0 (x, y), saved as a plain PNG slide.</summary>
    public static string WriteCrop(string path, long x, long y, int size = 768)
    {
        using var slide = SlideOpener.Open(SlideFixtures.CmuSmallRegion);
        File.WriteAllBytes(path, ImageDecoder.EncodePng(slide.ReadRegion(x, y, 0, size, size)));
        return path;
    }

    /// <summary>A blank white PNG: a slide with no tissue at all.</summary>
    public static string WriteBlank(string path, int size = 768)
    {
        var pixels = new byte[size * size * 3];
        Array.Fill(pixels, (byte)255);
        File.WriteAllBytes(path, ImageDecoder.EncodePng(new RgbImage(size, size, pixels)));
        return path;
    }

    /// <summary>Every file under <paramref name="dir"/> whose name starts with the slide id (outputs, temporaries).</summary>
    public static IReadOnlyList<string> FilesOf(string dir, string slideId) =>
        Directory.EnumerateFileSystemEntries(dir, "*", SearchOption.AllDirectories)
            .Where(p => Path.GetFileName(p).StartsWith(slideId + ".", StringComparison.Ordinal)
                        || Path.GetFileName(p).StartsWith("." + slideId + ".", StringComparison.Ordinal))
            .Order(StringComparer.Ordinal)
            .ToList();

    public static IReadOnlyList<string> TempFiles(string dir) =>
        Directory.EnumerateFiles(dir, "*.tmp", SearchOption.AllDirectories).ToList();

    /// <summary>Records what a cohort run reports, and can cancel it at a chosen point.</summary>
    public sealed class Recorder(Func<SlideJob, TileProgress, bool>? cancelWhen = null, CancellationTokenSource? cancel = null) : ICohortObserver
    {
        public List<string> Events { get; } = [];

        public void SlideStarted(SlideJob job, int position, int count) => Events.Add($"start {job.SlideId} {position}/{count}");

        public void TilesProgress(SlideJob job, TileProgress progress)
        {
            Events.Add($"tiles {job.SlideId} {progress.Done}/{progress.Total}");
            if (cancelWhen?.Invoke(job, progress) == true) cancel!.Cancel();
        }

        public void SlideFinished(SlideOutcome outcome, int position, int count) => Events.Add($"{outcome.Status} {outcome.Job.SlideId}");
    }
}
