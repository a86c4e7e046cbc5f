using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace GigaPath.Models.Heads;

/// <summary>Which downstream head: logistic regression on slide vectors, gated attention pooling over tiles, or the slide encoder with a linear classifier.</summary>
[JsonConverter(typeof(JsonStringEnumConverter<HeadKind>))]
public enum HeadKind
{
    /// <summary>A linear probe: logistic regression on one vector per slide (the mean tile feature or a stored slide embedding).</summary>
    [JsonStringEnumMemberName("linear")] Linear,

    /// <summary>Gated attention-based multiple-instance learning over the tile features (or the slide encoder's contextual tile outputs).</summary>
    [JsonStringEnumMemberName("abmil")] Abmil,

    /// <summary>The slide encoder fine-tuned (or frozen) with a linear classifier, as the reference's PANDA recipe.</summary>
    [JsonStringEnumMemberName("slide")] Slide,
}

/// <summary>
/// Everything needed to rebuild a head before its weights are loaded. Saved as JSON next to the head's safetensors
/// (<c>head.json</c> beside <c>head.safetensors</c>).
/// </summary>
internal sealed record HeadConfig
{
    public const string FormatName = "gigapath-head";

    public string Format { get; init; } = FormatName;
    public int Version { get; init; } = 1;
    public HeadKind Kind { get; init; }

    /// <summary>Width of the input vectors: tile features (abmil, slide) or slide vectors (linear).</summary>
    public int InputDim { get; init; }

    /// <summary>Class names in logit order.</summary>
    public IReadOnlyList<string> Classes { get; init; } = [];

    /// <summary>True when the classes are ordered grades (numeric labels).</summary>
    public bool Graded { get; init; }

    // linear probe
    /// <summary>For the linear probe: "auto" (a stored slide_embedding when present, else the tile mean), "mean" or "stored".</summary>
    public string SlideInput { get; init; } = "auto";

    // attention pooling
    public const string FeaturesInput = "features", ContextualInput = "contextual";

    /// <summary>What attention pooling reads per tile: "features" (tile encoder output) or "contextual" (the slide encoder's tile outputs).</summary>
    public string TileInput { get; init; } = FeaturesInput;

    /// <summary>For contextual input computed here: the slide encoder used (path) and the SHA-256 of its weights, so prediction can recompute it.</summary>
    public string? SlideEncoderSource { get; init; }
    public string? SlideEncoderSha256 { get; init; }

    public int HiddenDim { get; init; } = 256;
    public int AttentionDim { get; init; } = 128;
    public double Dropout { get; init; } = 0.25;

    // slide encoder head
    /// <summary>Which all-layer outputs feed the classifier, as the reference's "a-b-..." string (0 = input embedding state).</summary>
    public string FeatLayer { get; init; } = "11";
    public bool GlobalPool { get; init; }
    public bool Freeze { get; init; }

    /// <summary>The slide encoder's own configuration (slide head, or attention pooling over contextual tile outputs).</summary>
    public JsonObject? SlideEncoder { get; init; }

    [JsonIgnore] public int NumClasses => Classes.Count;

    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
    };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    public static HeadConfig FromJson(string json, string where)
    {
        HeadConfig? cfg;
        try
        {
            cfg = JsonSerializer.Deserialize<HeadConfig>(json, Json);
        }
        catch (JsonException e)
        {
            throw new GigaPathException($"{where}: not a valid head configuration ({e.Message})", e);
        }
        if (cfg is null || cfg.Format != FormatName)
            throw new GigaPathException($"{where}: not a head configuration (field 'format' must be '{FormatName}')");
        cfg.Validate(where);
        return cfg;
    }

    public void Validate(string where)
    {
        if (InputDim < 1) throw new GigaPathException($"{where}: input_dim must be positive, got {InputDim}");
        if (Classes.Count < 2) throw new GigaPathException($"{where}: classes must list at least two classes");
        if (Kind == HeadKind.Abmil && (HiddenDim < 1 || AttentionDim < 1))
            throw new GigaPathException($"{where}: hidden_dim and attention_dim must be positive");
        if (Dropout is < 0 or >= 1) throw new GigaPathException($"{where}: dropout must lie in [0, 1), got {Dropout}");
        if (TileInput is not (FeaturesInput or ContextualInput))
            throw new GigaPathException($"{where}: tile_input must be {FeaturesInput} or {ContextualInput}, got '{TileInput}'");
        if (Kind == HeadKind.Linear && SlideInput is not ("auto" or "mean" or "stored"))
            throw new GigaPathException($"{where}: slide_input must be auto, mean or stored, got '{SlideInput}'");
        if (Kind == HeadKind.Slide)
        {
            if (SlideEncoder is null) throw new GigaPathException($"{where}: a slide head needs the 'slide_encoder' configuration");
            FeatLayers.Parse(FeatLayer);
        }
    }
}
