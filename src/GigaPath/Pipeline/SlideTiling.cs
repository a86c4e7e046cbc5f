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
/// Tiling without a model, for checking tissue detection and coordinates before a cohort run: the plan as JSON
/// (<c>&lt;id&gt;.plan.json</c>), the thumbnail with the tissue mask and kept tiles (<c>&lt;id&gt;.thumbnail.png</c>),
/// and optionally every tile as a PNG named like the reference tiler's (<c>&lt;id&gt;.tiles/</c>).
/// </summary>
public static class SlideTiling
{
    internal const string TileNamePattern = "{x:05d}x_{y:05d}y.png (level-0 x, y)";

    /// <summary>The reference tiler's file name for a tile: <c>{x:05d}x_{y:05d}y.png</c>, level-0 x and y.</summary>
    internal static string TileFileName(TileLocation tile) =>
        string.Create(CultureInfo.InvariantCulture, $"{tile.Level0X:D5}x_{tile.Level0Y:D5}y.png");

    /// <summary>Writes <paramref name="image"/> (the tile's pixels) atomically into <paramref name="dir"/>.</summary>
    internal static void SaveTile(string dir, TileLocation tile, RgbImage image) =>
        image.SavePng(Path.Combine(dir, TileFileName(tile)));

    /// <summary>
    /// Plans <paramref name="job"/>'s slide and writes its plan and thumbnail (and tiles) into
    /// <paramref name="outputDirectory"/>, each file atomically. Throws <see cref="GigaPathException"/> when the slide
    /// cannot be opened or planned (see <see cref="TilingPlanner.Plan"/>).
    /// </summary>
    /// <param name="job">The slide; its MPP, when given, overrides <see cref="TilingOptions.SlideMpp"/>.</param>
    /// <param name="options">Tile size, resolution and tissue rule.</param>
    /// <param name="outputDirectory">The output folder.</param>
    /// <param name="saveTiles">Also write every tile as <c>&lt;id&gt;.tiles/{x:05d}x_{y:05d}y.png</c> (level-0 x, y).</param>
    /// <param name="readers">Tiles read and written at once when <paramref name="saveTiles"/> is set.</param>
    /// <param name="cancellationToken">Stops between tiles.</param>
    public static TilingPlan Write(SlideJob job, TilingOptions options, string outputDirectory, bool saveTiles = false, int readers = 4,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(job);
        ArgumentNullException.ThrowIfNull(options);
        ArgumentNullException.ThrowIfNull(outputDirectory);
        if (readers < 1) throw new GigaPathException($"{OptionNames.Readers} must be at least 1, got {readers}");
        var outputs = new SlideOutputs(outputDirectory, job.SlideId);
        double? mpp = job.SlideMpp ?? options.SlideMpp;
        using var slide = SlideOpener.Open(job.Path, mpp);
        var plan = TilingPlanner.Plan(slide, options with { SlideMpp = mpp });
        if (saveTiles)
        {
            var dir = Directory.CreateDirectory(outputs.TilesDir).FullName;
            Parallel.ForEach(plan.Tiles, new ParallelOptions { MaxDegreeOfParallelism = readers, CancellationToken = cancellationToken },
                tile => SaveTile(dir, tile, TilingPlanner.ReadTile(slide, plan, tile)));
        }
        TilingThumbnail.Write(outputs.Thumbnail, slide, plan);
        var file = new TilingPlanFile(job.SlideId, Path.GetFullPath(job.Path), SlidePipeline.TilingRecord(plan, plan.Tiles.Count),
            plan.Tiles.Select(t => new PlannedTile(t.Index, t.Level0X, t.Level0Y, t.TilingX, t.TilingY, t.GridX, t.GridY, t.TissueFraction)).ToList());
        AtomicFile.WriteAllText(outputs.Plan, JsonSerializer.Serialize(file, SlideManifest.Json) + "\n");
        return plan;
    }

    /// <summary><see cref="Write"/> on the thread pool.</summary>
    /// <param name="job">The slide; its MPP, when given, overrides <see cref="TilingOptions.SlideMpp"/>.</param>
    /// <param name="options">Tile size, resolution and tissue rule.</param>
    /// <param name="outputDirectory">The output folder.</param>
    /// <param name="saveTiles">Also write every tile as a PNG.</param>
    /// <param name="readers">Tiles read and written at once when <paramref name="saveTiles"/> is set.</param>
    /// <param name="cancellationToken">Stops between tiles.</param>
    public static Task<TilingPlan> WriteAsync(SlideJob job, TilingOptions options, string outputDirectory, bool saveTiles = false, int readers = 4,
        CancellationToken cancellationToken = default) =>
        Task.Run(() => Write(job, options, outputDirectory, saveTiles, readers, cancellationToken), cancellationToken);
}
