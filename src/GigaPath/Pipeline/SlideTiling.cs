using System.Globalization;
using System.Text.Json;
using GigaPath.Imaging;
using GigaPath.Slides;
using GigaPath.Weights;

namespace GigaPath.Pipeline;

/// <summary>One planned tile as listed in <c>&lt;id&gt;.plan.json</c>.</summary>
internal sealed record PlannedTile(int Index, long X, long Y, int TilingX, int TilingY, int GridX, int GridY, float TissueFraction);

/// <summary><c>&lt;id&gt;.plan.json</c>: the tiling of one slide, without any model.</summary>
internal sealed record TilingPlanFile(string SlideId, string SlidePath, TilingRecord Tiling, IReadOnlyList<PlannedTile> Tiles);

/// <summary>
/// Tiling without a model (<c>gigapath tile</c>): the plan as JSON, the thumbnail with the tissue mask and kept tiles,
/// and optionally every tile as a PNG named like the reference tiler's.
/// </summary>
internal static class SlideTiling
{
    public const string TileNamePattern = "{x:05d}x_{y:05d}y.png (level-0 x, y)";

    /// <summary>The reference tiler's file name for a tile: <c>{x:05d}x_{y:05d}y.png</c>, level-0 x and y.</summary>
    public static string TileFileName(TileLocation tile) =>
        string.Create(CultureInfo.InvariantCulture, $"{tile.Level0X:D5}x_{tile.Level0Y:D5}y.png");

    /// <summary>Writes <paramref name="image"/> (the tile's pixels) atomically into <paramref name="dir"/>.</summary>
    public static void SaveTile(string dir, TileLocation tile, RgbImage image) =>
        AtomicFile.WriteAllBytes(Path.Combine(dir, TileFileName(tile)), ImageDecoder.EncodePng(image));

    /// <summary>Plans <paramref name="job"/> and writes its plan and thumbnail (and tiles) into <paramref name="outDir"/>.</summary>
    public static TilingPlan Run(SlideJob job, TilingOptions options, string outDir, bool saveTiles, int readers, CancellationToken cancellation = default)
    {
        if (readers < 1) throw new GigaPathException($"{OptionNames.Readers} must be at least 1, got {readers}");
        var outputs = new SlideOutputs(outDir, job.SlideId);
        double? mpp = job.SlideMpp ?? options.SlideMpp;
        using var slide = SlideOpener.Open(job.Path, mpp);
        var plan = TilingPlanner.Plan(slide, options with { SlideMpp = mpp });
        if (saveTiles)
        {
            var dir = Directory.CreateDirectory(outputs.TilesDir).FullName;
            Parallel.ForEach(plan.Tiles, new ParallelOptions { MaxDegreeOfParallelism = readers, CancellationToken = cancellation },
                tile => SaveTile(dir, tile, TilingPlanner.ReadTile(slide, plan, tile)));
        }
        TilingThumbnail.Write(outputs.Thumbnail, slide, plan);
        var file = new TilingPlanFile(job.SlideId, Path.GetFullPath(job.Path), SlidePipeline.TilingRecord(plan, plan.Tiles.Count),
            plan.Tiles.Select(t => new PlannedTile(t.Index, t.Level0X, t.Level0Y, t.TilingX, t.TilingY, t.GridX, t.GridY, t.TissueFraction)).ToList());
        AtomicFile.WriteAllText(outputs.Plan, JsonSerializer.Serialize(file, SlideManifest.Json) + "\n");
        return plan;
    }
}
