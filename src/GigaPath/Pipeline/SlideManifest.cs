using System.Text.Json;
using System.Text.Json.Serialization;
using GigaPath.Weights;

namespace GigaPath.Pipeline;

/// <summary>
/// <c>&lt;slide&gt;.manifest.json</c>: provenance of one slide's outputs. It is written last, after every output is in
/// place, so its presence (with matching settings and output sizes) is what marks the slide complete.
/// </summary>
internal sealed record SlideManifest
{
    public const int CurrentVersion = 1;

    public int ManifestVersion { get; init; } = CurrentVersion;
    public required string SlideId { get; init; }
    public required DateTimeOffset CompletedUtc { get; init; }
    public required EngineRecord Engine { get; init; }
    public required SlideFileRecord Slide { get; init; }
    public required TilingRecord Tiling { get; init; }
    public required ModelRecord TileModel { get; init; }
    /// <summary>The slide encoder, or null for a run that writes tile features only.</summary>
    public required ModelRecord? SlideModel { get; init; }

    /// <summary>What the outputs depend on; a later run with other settings recomputes the slide.</summary>
    public required RunSettings Settings { get; init; }

    public required TimingRecord Timings { get; init; }

    /// <summary>Output files by role (h5, slide_embedding, thumbnail), each with its size and SHA-256.</summary>
    public required IReadOnlyDictionary<string, OutputRecord> Outputs { get; init; }

    /// <summary>Tiles saved as PNG with --save-tiles (folder name relative to the output folder), or null.</summary>
    public SavedTilesRecord? SavedTiles { get; init; }

    public IReadOnlyList<string> Warnings { get; init; } = [];

    internal static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.SnakeCaseLower) },
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        // Paths and descriptions stay readable (no \u0027 for quotes); the files are not embedded in HTML.
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json) + "\n";

    public void Write(string path) => AtomicFile.WriteAllText(path, ToJson());

    /// <summary>The manifest at <paramref name="path"/>, or null when absent, unreadable or of another version.</summary>
    public static SlideManifest? TryRead(string path)
    {
        if (!File.Exists(path)) return null;
        try
        {
            var manifest = JsonSerializer.Deserialize<SlideManifest>(File.ReadAllText(path), Json);
            return manifest?.ManifestVersion == CurrentVersion ? manifest : null;
        }
        catch (Exception e) when (e is JsonException or IOException or NotSupportedException)
        {
            return null;
        }
    }

    /// <summary>The manifest read from <paramref name="path"/>; throws naming the file when it is not one.</summary>
    public static SlideManifest Read(string path) =>
        TryRead(path) ?? throw new GigaPathException($"{path}: not a readable slide manifest (version {CurrentVersion})");
}

internal sealed record EngineRecord(string Name, string Version,
    [property: JsonPropertyName("torchsharp_version")] string TorchSharpVersion,
    [property: JsonPropertyName("openslide_version")] string? OpenSlideVersion);

internal sealed record SlideFileRecord
{
    public required string Path { get; init; }
    public required long SizeBytes { get; init; }
    public required string Sha256 { get; init; }
    public required string Vendor { get; init; }
    public required int LevelCount { get; init; }
    public required long Level0Width { get; init; }
    public required long Level0Height { get; init; }
    public double? MppX { get; init; }
    public double? MppY { get; init; }
    public double? ObjectivePower { get; init; }
}

internal sealed record TilingRecord
{
    public required double TargetMpp { get; init; }
    public required int TileSize { get; init; }
    public required double SlideMpp { get; init; }

    /// <summary>"metadata" (the file's openslide.mpp-x/-y) or "override" (--slide-mpp or the manifest's mpp column).</summary>
    public required string MppSource { get; init; }

    public required int Level { get; init; }
    public required double LevelDownsample { get; init; }
    public required double LevelMpp { get; init; }
    public required int ReadSize { get; init; }
    public required bool Resampled { get; init; }
    public required double TileMpp { get; init; }
    public required int GridColumns { get; init; }
    public required int GridRows { get; init; }
    public required string TissueMethod { get; init; }
    public required double MinTissueFraction { get; init; }
    public double? TissueThreshold { get; init; }

    /// <summary>Tiles planned (tissue kept) and tiles embedded (fewer only with --max-tiles).</summary>
    public required int PlannedTiles { get; init; }

    public required int TileCount { get; init; }

    public required string Coordinates { get; init; }
}

internal sealed record ModelRecord(string? Source, string Sha256, string Config, [property: JsonPropertyName("dtype")] string DType, string Device);

internal sealed record TimingRecord
{
    public required double OpenAndPlanSeconds { get; init; }

    /// <summary>Wall time of the streaming stage (reading, preprocessing and tile encoding overlapped).</summary>
    public required double TilesSeconds { get; init; }

    /// <summary>Time inside the tile encoder's forward passes only.</summary>
    public required double TileEncoderSeconds { get; init; }

    /// <summary>Reading and preprocessing time summed over the reader tasks (overlaps the encoder).</summary>
    public required double TileReadSeconds { get; init; }

    /// <summary>Time the encoder waited for tiles: what reading failed to hide.</summary>
    public required double WaitingForTilesSeconds { get; init; }

    public required double SlideEncoderSeconds { get; init; }
    public required double ThumbnailSeconds { get; init; }
    public required double WriteSeconds { get; init; }

    /// <summary>Hashing the slide file, in the background while the tiles are embedded.</summary>
    public required double SlideHashSeconds { get; init; }

    public required double TotalSeconds { get; init; }
    public required int BatchSize { get; init; }
    public required int Readers { get; init; }

    /// <summary>Tiles per second over the whole slide (open to manifest).</summary>
    public required double TilesPerSecondEndToEnd { get; init; }

    /// <summary>Tiles per second of the streaming stage.</summary>
    public required double TilesPerSecondTileStage { get; init; }

    /// <summary>Tiles per second of the tile encoder's forward passes alone.</summary>
    public required double TilesPerSecondTileEncoderOnly { get; init; }
}

internal sealed record OutputRecord(string File, long SizeBytes, string Sha256);

internal sealed record SavedTilesRecord(string Folder, int Count, string NamePattern);

/// <summary>Everything a slide's outputs depend on (besides the slide): compared to decide whether it is done.</summary>
internal sealed record RunSettings
{
    public required string TileModelSha256 { get; init; }
    public required string? SlideModelSha256 { get; init; }
    [JsonPropertyName("tile_dtype")]
    public required string TileDType { get; init; }

    [JsonPropertyName("slide_dtype")]
    public required string? SlideDType { get; init; }
    public required double TargetMpp { get; init; }
    public required int TileSize { get; init; }
    public double? SlideMppOverride { get; init; }
    public required double MppTolerance { get; init; }
    public required string TissueMethod { get; init; }
    public required double MinTissueFraction { get; init; }
    public required double MaskMpp { get; init; }
    public required string Pool { get; init; }
    public required bool AllLayers { get; init; }
    public int? MaxTiles { get; init; }
    public required bool SaveTiles { get; init; }

    /// <summary>
    /// Null when outputs made with <paramref name="done"/> serve a run asking for these settings, else what differs.
    /// Saved tiles count only when asked for now.
    /// </summary>
    public string? Mismatch(RunSettings done)
    {
        if (SaveTiles && !done.SaveTiles) return $"tiles were not saved ({OptionNames.SaveTiles})";
        var a = JsonSerializer.SerializeToElement(this with { SaveTiles = false }, SlideManifest.Json);
        var b = JsonSerializer.SerializeToElement(done with { SaveTiles = false }, SlideManifest.Json);
        foreach (var p in a.EnumerateObject())
        {
            var other = b.TryGetProperty(p.Name, out var v) ? v.GetRawText() : "null";
            if (p.Value.GetRawText() != other) return $"{p.Name} was {other}, now {p.Value.GetRawText()}";
        }
        return null;
    }
}
