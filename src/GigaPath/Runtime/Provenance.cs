using System.Globalization;

namespace GigaPath.Runtime;

/// <summary>
/// Who made an output file, as every writer records it in the file's metadata (safetensors <c>__metadata__</c>, HDF5
/// attributes): one record and one key spelling each, so a reader finds the same keys in every file this engine writes.
/// </summary>
/// <remarks>
/// Keys: <c>engine</c> (the name, <see cref="EngineInfo.Name"/>), <c>engine_version</c>, <c>torchsharp_version</c>, and
/// the SHA-256 of each model or source involved: <c>tile_model_sha256</c>, <c>slide_model_sha256</c>,
/// <c>source_sha256</c>. Files from earlier versions spelled the model hashes <c>model_sha256</c> (embed-tiles) and
/// <c>weights_sha256</c> (embed-slide), and some wrote <c>engine</c> as "name version"; <see cref="Read"/> accepts those.
/// </remarks>
internal sealed record Provenance
{
    public const string EngineKey = "engine";
    public const string EngineVersionKey = "engine_version";
    public const string TorchSharpVersionKey = "torchsharp_version";
    public const string TileModelSha256Key = "tile_model_sha256";
    public const string SlideModelSha256Key = "slide_model_sha256";
    public const string SourceSha256Key = "source_sha256";

    /// <summary>Earlier spellings of a key, accepted by <see cref="Read"/>.</summary>
    private static readonly Dictionary<string, string[]> FormerKeys = new()
    {
        [TileModelSha256Key] = ["model_sha256"],
        [SlideModelSha256Key] = ["weights_sha256"],
    };

    public string Engine { get; init; } = EngineInfo.Name;
    public string EngineVersion { get; init; } = EngineInfo.Version;
    public string? TorchSharpVersion { get; init; } = EngineInfo.TorchSharpVersion;

    /// <summary>SHA-256 of the tile encoder's weights, when one made the file's contents.</summary>
    public string? TileModelSha256 { get; init; }

    /// <summary>SHA-256 of the slide encoder's weights, when one made the file's contents.</summary>
    public string? SlideModelSha256 { get; init; }

    /// <summary>SHA-256 of the file this one was converted from.</summary>
    public string? SourceSha256 { get; init; }

    /// <summary>This engine, with no models.</summary>
    public static Provenance Current { get; } = new();

    /// <summary>The keys and values to record, in a fixed order; absent hashes are left out.</summary>
    public IEnumerable<KeyValuePair<string, string>> Entries()
    {
        yield return new(EngineKey, Engine);
        yield return new(EngineVersionKey, EngineVersion);
        if (TorchSharpVersion is not null) yield return new(TorchSharpVersionKey, TorchSharpVersion);
        if (TileModelSha256 is not null) yield return new(TileModelSha256Key, TileModelSha256);
        if (SlideModelSha256 is not null) yield return new(SlideModelSha256Key, SlideModelSha256);
        if (SourceSha256 is not null) yield return new(SourceSha256Key, SourceSha256);
    }

    /// <summary>Adds the entries to safetensors metadata, replacing any with the same keys.</summary>
    public Dictionary<string, string> AddTo(Dictionary<string, string> metadata)
    {
        foreach (var (key, value) in Entries()) metadata[key] = value;
        return metadata;
    }

    /// <summary>Adds the entries to HDF5 attributes, replacing any with the same keys.</summary>
    public IDictionary<string, object> AddToAttributes(IDictionary<string, object> attributes)
    {
        foreach (var (key, value) in Entries()) attributes[key] = value;
        return attributes;
    }

    /// <summary>
    /// The provenance recorded in <paramref name="metadata"/> (this version's keys, else the earlier spellings), or
    /// null when it records no engine.
    /// </summary>
    public static Provenance? Read(IReadOnlyDictionary<string, string> metadata)
    {
        string? Get(string key) => metadata.TryGetValue(key, out var v) ? v
            : FormerKeys.TryGetValue(key, out var former) ? former.Select(k => metadata.GetValueOrDefault(k)).FirstOrDefault(v => v is not null)
            : null;
        if (Get(EngineKey) is not { } engine) return null;
        var version = Get(EngineVersionKey);
        // Files that wrote "name version" under engine and no engine_version.
        if (version is null && engine.LastIndexOf(' ') is var space and > 0)
            (engine, version) = (engine[..space], engine[(space + 1)..]);
        return new Provenance
        {
            Engine = engine,
            EngineVersion = version ?? "",
            TorchSharpVersion = Get(TorchSharpVersionKey),
            TileModelSha256 = Get(TileModelSha256Key),
            SlideModelSha256 = Get(SlideModelSha256Key),
            SourceSha256 = Get(SourceSha256Key),
        };
    }

    /// <summary>"name version", for reports and logs.</summary>
    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"{Engine} {EngineVersion}");
}
