using System.Text.Json.Nodes;
using GigaPath.Imaging;

namespace GigaPath.Models.Tile;

/// <summary>
/// A named tile encoder (TRIDENT's names: <c>gigapath</c>, <c>hoptimus0</c>, <c>hoptimus1</c>, <c>h0-mini</c>,
/// <c>uni_v1</c>, <c>uni_v2</c>, <c>virchow</c>, <c>virchow2</c>): what its model card passes to timm in code, which
/// config.json cannot say (the MLP layer, LayerScale), how it turns tokens into an embedding, the fields its
/// config.json must have, and the tiling it expects. A config.json is read against one of these; a folder whose
/// config fits exactly one needs no name (<see cref="TileEncoderConfig.Load(string, string?)"/>).
/// </summary>
public sealed record TileEncoderKind
{
    /// <summary>The encoder's name, as TRIDENT spells it (<c>--encoder</c> on the command line).</summary>
    public string Name { get; internal init; } = "";

    /// <summary>The model's own name (e.g. "H-optimus-0").</summary>
    public string DisplayName { get; internal init; } = "";

    /// <summary>The Hugging Face repository holding its config.json and weights (e.g. "bioptimus/H-optimus-0").</summary>
    public string HuggingFaceRepository { get; internal init; } = "";

    /// <summary>The licence its model card states, and whether the download is gated behind an access request.</summary>
    public string License { get; internal init; } = "";

    /// <summary>The timm architecture its config.json must name.</summary>
    public string Architecture { get; internal init; } = "";

    /// <summary>How the final-norm tokens become the embedding.</summary>
    public TileEmbeddingPooling Pooling { get; internal init; } = TileEmbeddingPooling.ClassToken;

    /// <summary>The MLP its card passes in code (<c>mlp_layer=SwiGLUPacked, act_layer=SiLU</c>), or null for the architecture's own.</summary>
    internal TileMlp? CodeMlp { get; init; }

    /// <summary>LayerScale's init value its card passes in code (<c>init_values=1e-5</c>), or null.</summary>
    internal double? CodeInitValues { get; init; }

    /// <summary>Patch side its config must resolve to.</summary>
    public int PatchSize { get; internal init; }

    /// <summary>Register tokens its config must resolve to.</summary>
    public int RegisterTokens { get; internal init; }

    /// <summary>True when its position embedding covers the patches only (timm's <c>no_embed_class</c>).</summary>
    public bool NoEmbedClass { get; internal init; }

    /// <summary>The MLP ratio its config must have, when the card fixes one (Virchow's 5.3375), or null for any.</summary>
    public double? RequiredMlpRatio { get; internal init; }

    /// <summary>
    /// Resize ratio of the model's own reference transform when it is not its <c>pretrained_cfg.crop_pct</c>
    /// (Prov-GigaPath's code resizes to 256 and crops 224: 0.875, whatever its config says), or null to use the config's.
    /// </summary>
    public double? ReferenceCropFraction { get; internal init; }

    /// <summary>Tile side in pixels that <c>run</c> cuts by default for this encoder (at <see cref="DefaultMicronsPerPixel"/>).</summary>
    public int DefaultTileSize { get; internal init; }

    /// <summary>Resolution in µm per pixel that <c>run</c> tiles at by default for this encoder (0.5 = 20×).</summary>
    public double DefaultMicronsPerPixel { get; internal init; } = 0.5;

    /// <summary>The published model's <c>model_args</c> (what its card passes to timm that is serialisable), as JSON.</summary>
    internal string PublishedModelArgs { get; init; } = "{}";

    /// <summary>The published model's normalisation mean (RGB).</summary>
    internal IReadOnlyList<double> PublishedMean { get; init; } = [0.485, 0.456, 0.406];

    /// <summary>The published model's normalisation standard deviation (RGB).</summary>
    internal IReadOnlyList<double> PublishedStd { get; init; } = [0.229, 0.224, 0.225];

    /// <summary>The published model's resize interpolation.</summary>
    internal ResizeInterpolation PublishedInterpolation { get; init; } = ResizeInterpolation.Bicubic;

    /// <summary>The published model's <c>global_pool</c>.</summary>
    internal string PublishedGlobalPool { get; init; } = "token";

    private TileEncoderKind()
    {
    }

    /// <summary>Every named encoder, in the order of the docs' table.</summary>
    public static IReadOnlyList<TileEncoderKind> All { get; } =
    [
        new TileEncoderKind
        {
            Name = "gigapath", DisplayName = "Prov-GigaPath", HuggingFaceRepository = "prov-gigapath/prov-gigapath",
            License = "Apache-2.0, gated", Architecture = "vit_giant_patch14_dinov2", PatchSize = 16, ReferenceCropFraction = 0.875,
            DefaultTileSize = 256,
            PublishedModelArgs = """{"img_size": 224, "in_chans": 3, "patch_size": 16, "embed_dim": 1536, "depth": 40, "num_heads": 24, "init_values": 1e-05, "mlp_ratio": 5.33334, "num_classes": 0}""",
        },
        new TileEncoderKind
        {
            Name = "hoptimus0", DisplayName = "H-optimus-0", HuggingFaceRepository = "bioptimus/H-optimus-0",
            License = "Apache-2.0, gated", Architecture = "vit_giant_patch14_reg4_dinov2", PatchSize = 14, RegisterTokens = 4,
            NoEmbedClass = true, CodeInitValues = 1e-5, DefaultTileSize = 224,
            PublishedModelArgs = """{"img_size": 224, "init_values": 1e-05, "dynamic_img_size": false, "num_classes": 0}""",
            PublishedMean = HOptimusMean, PublishedStd = HOptimusStd,
        },
        new TileEncoderKind
        {
            Name = "hoptimus1", DisplayName = "H-optimus-1", HuggingFaceRepository = "bioptimus/H-optimus-1",
            License = "non-commercial licence of its card, gated", Architecture = "vit_giant_patch14_reg4_dinov2", PatchSize = 14,
            RegisterTokens = 4, NoEmbedClass = true, CodeInitValues = 1e-5, DefaultTileSize = 224,
            PublishedModelArgs = """{"img_size": 224, "init_values": 1e-05, "dynamic_img_size": false, "num_classes": 0}""",
            PublishedMean = HOptimusMean, PublishedStd = HOptimusStd,
        },
        new TileEncoderKind
        {
            Name = "h0-mini", DisplayName = "H0-mini", HuggingFaceRepository = "bioptimus/H0-mini",
            License = "CC-BY-NC-ND-4.0, gated", Architecture = "vit_base_patch14_reg4_dinov2", PatchSize = 14, RegisterTokens = 4,
            NoEmbedClass = true, CodeMlp = TileMlp.SwiGluPacked, DefaultTileSize = 224,
            PublishedModelArgs = """{"img_size": 224, "num_classes": 0, "dynamic_img_size": true}""",
            PublishedMean = HOptimusMean, PublishedStd = HOptimusStd,
        },
        new TileEncoderKind
        {
            Name = "uni_v1", DisplayName = "UNI", HuggingFaceRepository = "MahmoodLab/UNI",
            License = "CC-BY-NC-ND-4.0, gated", Architecture = "vit_large_patch16_224", PatchSize = 16, CodeInitValues = 1e-5,
            DefaultTileSize = 256, PublishedInterpolation = ResizeInterpolation.Bilinear,
            PublishedModelArgs = """{"img_size": 224, "patch_size": 16, "init_values": 1e-05, "num_classes": 0, "dynamic_img_size": true}""",
        },
        new TileEncoderKind
        {
            Name = "uni_v2", DisplayName = "UNI2-h", HuggingFaceRepository = "MahmoodLab/UNI2-h",
            License = "CC-BY-NC-ND-4.0, gated", Architecture = "vit_giant_patch14_224", PatchSize = 14, RegisterTokens = 8,
            NoEmbedClass = true, CodeMlp = TileMlp.SwiGluPacked, DefaultTileSize = 256,
            PublishedModelArgs = """{"img_size": 224, "patch_size": 14, "depth": 24, "num_heads": 24, "init_values": 1e-05, "embed_dim": 1536, "mlp_ratio": 5.33334, "num_classes": 0, "no_embed_class": true, "reg_tokens": 8, "dynamic_img_size": true}""",
        },
        new TileEncoderKind
        {
            Name = "virchow", DisplayName = "Virchow", HuggingFaceRepository = "paige-ai/Virchow",
            License = "Apache-2.0, gated", Architecture = "vit_huge_patch14_224", PatchSize = 14, RequiredMlpRatio = 5.3375,
            CodeMlp = TileMlp.SwiGluPacked, Pooling = TileEmbeddingPooling.ClassTokenAndPatchMean, DefaultTileSize = 224,
            PublishedGlobalPool = "",
            PublishedModelArgs = """{"img_size": 224, "init_values": 1e-05, "num_classes": 0, "mlp_ratio": 5.3375, "global_pool": "", "dynamic_img_size": true}""",
        },
        new TileEncoderKind
        {
            Name = "virchow2", DisplayName = "Virchow2", HuggingFaceRepository = "paige-ai/Virchow2",
            License = "CC-BY-NC-ND-4.0, gated", Architecture = "vit_huge_patch14_224", PatchSize = 14, RegisterTokens = 4,
            RequiredMlpRatio = 5.3375, CodeMlp = TileMlp.SwiGluPacked, Pooling = TileEmbeddingPooling.ClassTokenAndPatchMean,
            DefaultTileSize = 224, PublishedGlobalPool = "",
            PublishedModelArgs = """{"img_size": 224, "init_values": 1e-05, "num_classes": 0, "reg_tokens": 4, "mlp_ratio": 5.3375, "global_pool": "", "dynamic_img_size": true}""",
        },
    ];

    private static IReadOnlyList<double> HOptimusMean => [0.707223, 0.578729, 0.703617];
    private static IReadOnlyList<double> HOptimusStd => [0.211883, 0.230117, 0.177517];

    /// <summary>The names of <see cref="All"/>, comma-separated, for messages and help text.</summary>
    public static string Names => string.Join(", ", All.Select(k => k.Name));

    /// <summary>The encoder named <paramref name="name"/> (case-insensitive), or an error listing the names.</summary>
    /// <exception cref="GigaPathException">No encoder has that name.</exception>
    public static TileEncoderKind Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        return All.FirstOrDefault(k => string.Equals(k.Name, name.Trim(), StringComparison.OrdinalIgnoreCase))
            ?? throw new GigaPathException($"unknown tile encoder \"{name}\"; the named encoders are {Names}");
    }

    /// <summary>The published full-size model's config (nothing downloaded): for <see cref="TileEncoder.Describe"/>, benchmarks and random models.</summary>
    public TileEncoderConfig GetPublishedConfig()
    {
        var json = new JsonObject
        {
            ["architecture"] = Architecture,
            ["num_classes"] = 0,
            ["global_pool"] = PublishedGlobalPool,
            ["model_args"] = JsonNode.Parse(PublishedModelArgs),
            ["pretrained_cfg"] = new JsonObject
            {
                ["interpolation"] = PublishedInterpolation == ResizeInterpolation.Bilinear ? "bilinear" : "bicubic",
                ["crop_pct"] = 1.0,
                ["mean"] = new JsonArray(PublishedMean.Select(v => (JsonNode?)v).ToArray()),
                ["std"] = new JsonArray(PublishedStd.Select(v => (JsonNode?)v).ToArray()),
            },
        }.ToJsonString();
        return TileEncoderConfig.FromJson(json, $"{Name} (published)", Name);
    }
}

/// <summary>How a tile encoder turns its final-norm tokens into the embedding.</summary>
public enum TileEmbeddingPooling
{
    /// <summary>The class token: width D.</summary>
    ClassToken,

    /// <summary>The class token followed by the mean of the patch tokens (registers excluded): width 2·D (Virchow).</summary>
    ClassTokenAndPatchMean,
}

/// <summary>The MLP of each transformer block.</summary>
public enum TileMlp
{
    /// <summary>timm's <c>SwiGLUPacked</c>: fc1 packs value and gate, silu(value) ⊙ gate, then fc2.</summary>
    SwiGluPacked,

    /// <summary>timm's <c>Mlp</c>: fc1, exact (erf) GELU, fc2.</summary>
    Gelu,
}
