using System.Diagnostics;
using System.Globalization;
using GigaPath.Imaging;
using GigaPath.Models.Slide;
using GigaPath.Models.Tile;
using GigaPath.Pipeline;
using GigaPath.Runtime;
using GigaPath.Slides;
using static TorchSharp.torch;

namespace GigaPath.Tools;

/// <summary>
/// Throughput of the whole-slide pipeline on one slide, end to end, against the tile encoder alone on the same tiles
/// (read and preprocessed beforehand, untimed), to show how much of the reading the streaming hides.
/// </summary>
internal static class PipelineMeasurement
{
    public static int Run(string slidePath, TileEncoder tileEncoder, SlideEncoder slideEncoder, PipelineOptions options, string outDir)
    {
        var pipeline = new SlidePipeline(tileEncoder, slideEncoder, options);
        var job = new SlideJob(SlideIds.FromPath(slidePath), slidePath);

        using var slide = SlideOpener.Open(slidePath, options.Tiling.SlideMpp);
        var plan = TilingPlanner.Plan(slide, options.Tiling);
        var tiles = options.MaxTiles is { } max && max < plan.Tiles.Count ? plan.Tiles.Take(max).ToList() : plan.Tiles;
        var preprocessor = tileEncoder.Config.CreatePreprocessor();
        var pixels = tiles.Select(t => preprocessor.Preprocess(TilingPlanner.ReadTile(slide, plan, t))).ToList();

        // One-time costs go elsewhere, as in a cohort run: hashing the weights (done before the first slide's skip
        // check), and the allocator's and kernels' first calls (a warm-up batch).
        _ = pipeline.SettingsFor(job);
        using (var warm = preprocessor.ToBatch(pixels.Take(Math.Min(options.BatchSize, pixels.Count)).ToList()))
            tileEncoder.Embed(warm).Dispose();

        // The encoder alone is timed before and after the pipeline run, so that a change in the machine's load
        // (shared CPUs) shows up as a spread rather than as a difference between the two.
        double before = EncoderOnly(tileEncoder, preprocessor, pixels, options.BatchSize);
        var manifest = pipeline.Process(job, new SlideOutputs(outDir, job.SlideId));
        double after = EncoderOnly(tileEncoder, preprocessor, pixels, options.BatchSize);

        var t = manifest.Timings;
        string F(double v) => v.ToString("F2", CultureInfo.InvariantCulture);
        Console.WriteLine($"slide {slidePath}: {manifest.Tiling.TileCount} tiles (of {manifest.Tiling.PlannedTiles} planned), tile model {tileEncoder.Config.Describe()} {DeviceSelection.Name(tileEncoder.Options.DType)}, batch {options.BatchSize}, readers {options.Readers}, {Environment.ProcessorCount} CPUs");
        Console.WriteLine($"  end to end (open, plan, read, embed, slide encoder, write): {F(t.TotalSeconds)} s, {F(t.TilesPerSecondEndToEnd)} tiles/s");
        Console.WriteLine($"  tile stage (reading overlapped with the encoder):         {F(t.TilesSeconds)} s, {F(t.TilesPerSecondTileStage)} tiles/s; encoder waited {F(t.WaitingForTilesSeconds)} s for tiles");
        Console.WriteLine($"  tile encoder inside the tile stage (forward passes only):  {F(t.TileEncoderSeconds)} s, {F(t.TilesPerSecondTileEncoderOnly)} tiles/s");
        Console.WriteLine($"  tile encoder alone on the same tiles, pre-read:            {F(pixels.Count / before)} s before, {F(pixels.Count / after)} s after the run: {F(before)} / {F(after)} tiles/s");
        Console.WriteLine($"  stages: open+plan {F(t.OpenAndPlanSeconds)} s, reading (summed over readers) {F(t.TileReadSeconds)} s, slide encoder {F(t.SlideEncoderSeconds)} s, thumbnail {F(t.ThumbnailSeconds)} s, write {F(t.WriteSeconds)} s");
        Console.WriteLine($"  outputs: {Path.GetFullPath(outDir)}");
        return 0;
    }

    /// <summary>Tiles per second of the encoder's forward passes over <paramref name="pixels"/>, batched as in the run.</summary>
    private static double EncoderOnly(TileEncoder encoder, TilePreprocessor preprocessor, IReadOnlyList<float[]> pixels, int batchSize)
    {
        var clock = Stopwatch.StartNew();
        for (int start = 0; start < pixels.Count; start += batchSize)
        {
            using var batch = preprocessor.ToBatch(pixels.Skip(start).Take(batchSize).ToList());
            encoder.Embed(batch).Dispose();
        }
        return pixels.Count / clock.Elapsed.TotalSeconds;
    }
}
