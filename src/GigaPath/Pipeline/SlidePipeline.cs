using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using GigaPath.Imaging;
using GigaPath.IO;
using GigaPath.Models.Slide;
using GigaPath.Models.Tile;
using GigaPath.Runtime;
using GigaPath.Slides;
using GigaPath.Weights;

namespace GigaPath.Pipeline;

/// <summary>The tile embeddings of a slide's tiles, in tile order, and how long it took to get them.</summary>
internal sealed record StreamedTileEmbeddings(float[] Features, int Count, int Dim, TimeSpan Wall, TimeSpan Encoder, TimeSpan Read, TimeSpan Waiting);

/// <summary>
/// Slide file → tile embeddings → slide embeddings, streaming: tiles are read and preprocessed by several reader tasks
/// while the tile encoder runs on batches, and nothing is written per tile unless asked. Without a slide encoder (a
/// tile encoder other than Prov-GigaPath's) the slide's tile features are the result. Outputs (see
/// <see cref="SlideOutputs"/>) are each written atomically and the manifest last.
/// </summary>
internal sealed class SlidePipeline
{
    private readonly TileEncoder _tileEncoder;
    private readonly SlideEncoder? _slideEncoder;

    public PipelineOptions Options { get; }

    /// <summary>Whether slides get a slide embedding (a slide encoder was given).</summary>
    public bool EncodesSlides => _slideEncoder is not null;

    public SlidePipeline(TileEncoder tileEncoder, SlideEncoder? slideEncoder, PipelineOptions options)
    {
        options.Validate();
        options.Tiling.Validate();
        if (slideEncoder is not null)
        {
            SlideEncoder.CheckTileEncoder(tileEncoder.Config.Encoder, $"the tile encoder ({tileEncoder.Source ?? "in memory"})");
            if (slideEncoder.Config.InputChannels != tileEncoder.Config.OutputDim)
                throw new GigaPathException(
                    $"the slide encoder ({slideEncoder.WeightsPath ?? "in memory"}) takes {slideEncoder.Config.InputChannels}-wide tile embeddings " +
                    $"but the tile encoder ({tileEncoder.Source ?? "in memory"}) makes {tileEncoder.Config.OutputDim}-wide ones; use a matching model pair");
        }
        _tileEncoder = tileEncoder;
        _slideEncoder = slideEncoder;
        Options = options;
    }

    /// <summary>The settings <paramref name="job"/>'s outputs depend on (recorded in its manifest).</summary>
    public RunSettings SettingsFor(SlideJob job)
    {
        var t = Options.Tiling;
        return new RunSettings
        {
            TileModelSha256 = _tileEncoder.WeightsSha256,
            SlideModelSha256 = _slideEncoder?.WeightsSha256,
            TileDType = DeviceSelection.Name(_tileEncoder.Options.DType),
            SlideDType = _slideEncoder is null ? null : DeviceSelection.Name(_slideEncoder.Options.DType),
            TargetMpp = t.TargetMpp,
            TileSize = t.TileSize,
            SlideMppOverride = job.SlideMpp ?? t.SlideMpp,
            MppTolerance = t.MppTolerance,
            TissueMethod = TissueName(t.TissueMethod),
            MinTissueFraction = t.MinTissueFraction,
            MaskMpp = t.MaskMpp,
            Pool = SlidePoolingNames.ToName(Options.Pooling),
            AllLayers = Options.AllLayers,
            MaxTiles = Options.MaxTiles,
            SaveTiles = Options.SaveTiles,
        };
    }

    /// <summary>
    /// Computes every output of <paramref name="job"/> and returns the manifest written. The outputs are written to a
    /// staging folder and replace earlier ones only once all of them are complete (see <see cref="SlideStaging"/>): on
    /// failure or cancellation the new partial outputs are removed and the slide's earlier outputs are left as they
    /// were. The caller must hold the slide's lock (see <see cref="CohortRunner"/>).
    /// </summary>
    public SlideManifest Process(SlideJob job, SlideOutputs outputs, IProgress<TileProgress>? progress = null, CancellationToken cancellation = default)
    {
        cancellation.ThrowIfCancellationRequested();
        var total = Stopwatch.StartNew();
        Directory.CreateDirectory(outputs.OutDir);
        using var staging = new SlideStaging(outputs);
        var staged = staging.Staged;
        using var hashCancel = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        Task<(string Sha256, TimeSpan Time)>? hashing = null;
        try
        {
            double? mpp = job.SlideMpp ?? Options.Tiling.SlideMpp;
            using var slide = SlideOpener.Open(job.Path, mpp);
            // The slide's hash is provenance only: compute it while the tiles are embedded.
            hashing = Task.Run(() =>
            {
                long t0 = Stopwatch.GetTimestamp();
                var sha = FileHashing.Sha256([job.Path], hashCancel.Token);
                return (sha, Stopwatch.GetElapsedTime(t0));
            }, hashCancel.Token);
            var plan = TilingPlanner.Plan(slide, Options.Tiling with { SlideMpp = mpp });
            var tiles = Options.MaxTiles is { } max && max < plan.Tiles.Count ? plan.Tiles.Take(max).ToList() : plan.Tiles;
            var planTime = total.Elapsed;

            string? tilesDir = Options.SaveTiles ? Directory.CreateDirectory(staged.TilesDir).FullName : null;
            var embedded = EmbedTiles(slide, plan, tiles, tilesDir, progress, cancellation);
            cancellation.ThrowIfCancellationRequested();

            // The tiles' coordinates, computed once: written to the .h5 and given to the slide encoder.
            var features = ToTileFeatures(job, slide, plan, tiles, embedded);
            long t = Stopwatch.GetTimestamp();
            using var encoding = _slideEncoder?.Embed(features, Options.AllLayers, level0TileSize: null, cancellation);
            var slideTime = Stopwatch.GetElapsedTime(t);
            cancellation.ThrowIfCancellationRequested();

            t = Stopwatch.GetTimestamp();
            TilingThumbnail.Write(staged.Thumbnail, slide, plan with { Tiles = tiles }, Options.ThumbnailSize);
            var thumbTime = Stopwatch.GetElapsedTime(t);

            t = Stopwatch.GetTimestamp();
            TileFeatureFile.WriteH5(staged.H5, features);
            if (encoding is not null)
                SlideEmbeddingFile.Write(staged.SlideEmbedding, encoding, Options.Pooling, EmbeddingMetadata(_slideEncoder!, job, tiles.Count));
            var (slideSha, hashTime) = hashing.GetAwaiter().GetResult();
            var files = staged.Files.ToDictionary(kv => kv.Key, kv => Describe(kv.Value));
            var writeTime = Stopwatch.GetElapsedTime(t);

            var manifest = new SlideManifest
            {
                SlideId = job.SlideId,
                CompletedUtc = DateTimeOffset.UtcNow,
                Engine = new EngineRecord(EngineInfo.Name, EngineInfo.Version, EngineInfo.TorchSharpVersion, OpenSlideVersion()),
                Slide = SlideRecord(job, slide, slideSha),
                Tiling = TilingRecord(plan, tiles.Count),
                TileModel = new ModelRecord(_tileEncoder.Source is { } s ? Path.GetFullPath(s) : null, _tileEncoder.WeightsSha256,
                    _tileEncoder.Config.Describe(), DeviceSelection.Name(_tileEncoder.Options.DType), _tileEncoder.Options.Device.ToString()),
                SlideModel = _slideEncoder is null ? null : new ModelRecord(_slideEncoder.WeightsPath, _slideEncoder.WeightsSha256, _slideEncoder.Config.ToString(),
                    DeviceSelection.Name(_slideEncoder.Options.DType), _slideEncoder.Options.Device.ToString()),
                Settings = SettingsFor(job),
                Timings = Timings(tiles.Count, planTime, embedded, slideTime, thumbTime, writeTime, hashTime, total.Elapsed),
                Outputs = files,
                SavedTiles = tilesDir is null ? null : new SavedTilesRecord(Path.GetFileName(outputs.TilesDir), tiles.Count, SlideTiling.TileNamePattern),
                Warnings = encoding?.Warnings ?? [],
            };
            cancellation.ThrowIfCancellationRequested();
            staging.Commit(manifest.Write);
            return manifest;
        }
        catch
        {
            hashCancel.Cancel();
            try
            {
                hashing?.Wait();
            }
            catch (AggregateException)
            {
                // Cancelled or failed along with the slide; the slide's own error is the one reported.
            }
            // Disposing the staging removes the new partial outputs; the slide's earlier outputs stay as they were.
            throw;
        }
    }

    /// <summary>
    /// Reads, preprocesses and embeds <paramref name="tiles"/> of <paramref name="plan"/> in order, reading with
    /// <see cref="PipelineOptions.Readers"/> tasks while the encoder runs. With <paramref name="saveTilesDir"/>, each
    /// tile is also written there as <c>{x:05d}x_{y:05d}y.png</c> (level-0 x, y).
    /// </summary>
    public StreamedTileEmbeddings EmbedTiles(ISlide slide, TilingPlan plan, IReadOnlyList<TileLocation> tiles, string? saveTilesDir = null,
        IProgress<TileProgress>? progress = null, CancellationToken cancellation = default)
    {
        int n = tiles.Count, dim = _tileEncoder.Config.OutputDim;
        var features = new float[checked((long)n * dim)];

        float[] Read(int i, TilePreprocessor preprocessor)
        {
            var image = TilingPlanner.ReadTile(slide, plan, tiles[i]);
            if (saveTilesDir is not null)
                SlideTiling.SaveTile(saveTilesDir, tiles[i], image);
            return preprocessor.Preprocess(image);
        }

        string Describe(int i) => string.Create(CultureInfo.InvariantCulture, $"tile {i} (level-0 x {tiles[i].Level0X}, y {tiles[i].Level0Y})");

        var options = new TileEmbeddingOptions { BatchSize = Options.BatchSize, Readers = Options.Readers, ReadAheadBatches = Options.QueueBatches };
        using var loader = new TileLoader(_tileEncoder, new DelegateTileSource(n, Read, Describe), options, cancellation);
        while (loader.Next() is { } next)
        {
            using var result = next.Result;
            MemoryMarshal.Cast<byte, float>(result.Embeddings.bytes).CopyTo(features.AsSpan(next.Start * dim, result.Count * dim));
            progress?.Report(new TileProgress(next.Start + result.Count, n, loader.Elapsed));
        }
        return new StreamedTileEmbeddings(features, n, dim, loader.Elapsed, loader.EncoderTime, loader.ReadTime, loader.WaitTime);
    }

    /// <summary>
    /// The slide's tile features as written to its .h5 and given to the slide encoder: level-0 <c>coords</c>,
    /// tiling-resolution <c>coords_tiling</c> (the slide encoder's positions) and the patch attributes of
    /// <see cref="PatchAttributes.ForTiling"/>.
    /// </summary>
    private TileFeatures ToTileFeatures(SlideJob job, ISlide slide, TilingPlan plan, IReadOnlyList<TileLocation> tiles, StreamedTileEmbeddings embedded)
    {
        var level0 = new double[tiles.Count * 2];
        var tiling = new double[tiles.Count * 2];
        for (int i = 0; i < tiles.Count; i++)
        {
            (level0[2 * i], level0[2 * i + 1]) = (tiles[i].Level0X, tiles[i].Level0Y);
            (tiling[2 * i], tiling[2 * i + 1]) = (tiles[i].TilingX, tiles[i].TilingY);
        }
        var attributes = PatchAttributes.ForTiling(job.SlideId, slide, plan, _tileEncoder.Config.Encoder, _tileEncoder.WeightsSha256);
        return new TileFeatures(embedded.Features, embedded.Count, embedded.Dim, level0, attributes, job.Path) { TilingCoords = tiling };
    }

    private Dictionary<string, string> EmbeddingMetadata(SlideEncoder slideEncoder, SlideJob job, int tiles) =>
        new Provenance { TileModelSha256 = _tileEncoder.WeightsSha256, SlideModelSha256 = slideEncoder.WeightsSha256 }.AddTo(new()
        {
            ["slide_id"] = job.SlideId,
            ["num_tiles"] = tiles.ToString(CultureInfo.InvariantCulture),
            ["all_layers"] = Options.AllLayers ? "true" : "false",
            ["slide_model_config"] = slideEncoder.Config.ToString(),
            ["coords"] = "tiling resolution (coords_tiling of the .h5)",
        });

    private static OutputRecord Describe(string file) =>
        new(Path.GetFileName(file), new FileInfo(file).Length, FileHashing.Sha256(file));

    private static SlideFileRecord SlideRecord(SlideJob job, ISlide slide, string sha256)
    {
        var (w0, h0) = slide.LevelDimensions(0);
        return new SlideFileRecord
        {
            Path = Path.GetFullPath(job.Path),
            SizeBytes = new FileInfo(job.Path).Length,
            Sha256 = sha256,
            Vendor = slide.Vendor,
            LevelCount = slide.LevelCount,
            Level0Width = w0,
            Level0Height = h0,
            MppX = slide.MppX,
            MppY = slide.MppY,
            ObjectivePower = slide.ObjectivePower,
        };
    }

    internal static TilingRecord TilingRecord(TilingPlan plan, int embedded) => new()
    {
        TargetMpp = plan.TargetMpp,
        TileSize = plan.TileSize,
        SlideMpp = plan.SlideMpp,
        MppSource = PatchAttributes.MppSourceName(plan.MppSource),
        Level = plan.Level,
        LevelDownsample = plan.LevelDownsample,
        LevelMpp = plan.LevelMpp,
        ReadSize = plan.ReadSize,
        Resampled = plan.Resampled,
        TileMpp = plan.TileMpp,
        GridColumns = plan.GridColumns,
        GridRows = plan.GridRows,
        TissueMethod = TissueName(plan.TissueMethod),
        MinTissueFraction = plan.MinTissueFraction,
        TissueThreshold = plan.TissueThreshold is { } threshold && double.IsFinite(threshold) ? threshold : null,
        PlannedTiles = plan.Tiles.Count,
        TileCount = embedded,
        Coordinates = PatchAttributes.CoordinateContract,
    };

    private TimingRecord Timings(int tiles, TimeSpan plan, StreamedTileEmbeddings e, TimeSpan slide, TimeSpan thumb, TimeSpan write, TimeSpan hash, TimeSpan total)
    {
        static double Rate(int n, TimeSpan t) => t > TimeSpan.Zero ? Math.Round(n / t.TotalSeconds, 3) : 0;
        static double S(TimeSpan t) => Math.Round(t.TotalSeconds, 4);
        return new TimingRecord
        {
            OpenAndPlanSeconds = S(plan),
            TilesSeconds = S(e.Wall),
            TileEncoderSeconds = S(e.Encoder),
            TileReadSeconds = S(e.Read),
            WaitingForTilesSeconds = S(e.Waiting),
            SlideEncoderSeconds = S(slide),
            ThumbnailSeconds = S(thumb),
            WriteSeconds = S(write),
            SlideHashSeconds = S(hash),
            TotalSeconds = S(total),
            BatchSize = Options.BatchSize,
            Readers = Options.Readers,
            TilesPerSecondEndToEnd = Rate(tiles, total),
            TilesPerSecondTileStage = Rate(tiles, e.Wall),
            TilesPerSecondTileEncoderOnly = Rate(tiles, e.Encoder),
        };
    }

    private static string? OpenSlideVersion()
    {
        try
        {
            return OpenSlideSlide.LibraryVersion;
        }
        catch (GigaPathException)
        {
            return null;
        }
    }

    public static string TissueName(TissueMethod method) => method switch
    {
        TissueMethod.LuminanceOtsu => "luminance",
        TissueMethod.SaturationOtsu => "saturation",
        _ => "none",
    };
}
