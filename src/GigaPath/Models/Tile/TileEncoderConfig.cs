using System.Text.Json;
using System.Text.Json.Nodes;

namespace GigaPath.Models.Tile;

/// <summary>
/// The tile encoder's shape, read from a Hugging Face timm-style <c>config.json</c> (<c>architecture</c>,
/// <c>model_args</c>, <c>num_features</c>, <c>global_pool</c>, <c>pretrained_cfg</c>). Only the timm
/// <c>vit_giant_patch14_dinov2</c> family is accepted: a VisionTransformer with a CLS token, learned absolute
/// positions, LayerScale, a packed SwiGLU MLP and CLS-token pooling after the final norm. Anything else is refused
/// with the field and the file named, because loading weights into a near-miss architecture gives plausible garbage.
/// </summary>
public sealed record TileEncoderConfig
{
    /// <summary>The timm entrypoint this port implements.</summary>
    public const string SupportedArchitecture = "vit_giant_patch14_dinov2";

    /// <summary>Every LayerNorm in the model (timm's ViT uses 1e-6, not torch's default 1e-5).</summary>
    public const double LayerNormEps = 1e-6;

    public string Architecture { get; init; } = SupportedArchitecture;
    public int ImgSize { get; init; }
    public int InChans { get; init; } = 3;
    public int PatchSize { get; init; }
    public int EmbedDim { get; init; }
    public int Depth { get; init; }
    public int NumHeads { get; init; }
    public double MlpRatio { get; init; }

    /// <summary>LayerScale's initial value; only used by random initialisation, the trained gamma is in the checkpoint.</summary>
    public double InitValues { get; init; }

    public int NumFeatures { get; init; }
    public string GlobalPool { get; init; } = "token";

    /// <summary>Normalisation the weights were trained with (pretrained_cfg.mean / std), RGB order.</summary>
    public IReadOnlyList<double> Mean { get; init; } = ImageNetMean;
    public IReadOnlyList<double> Std { get; init; } = ImageNetStd;

    /// <summary>Where the config came from, for messages and provenance.</summary>
    public string SourceName { get; init; } = "built-in";

    public static readonly IReadOnlyList<double> ImageNetMean = [0.485, 0.456, 0.406];
    public static readonly IReadOnlyList<double> ImageNetStd = [0.229, 0.224, 0.225];

    public int HeadDim => EmbedDim / NumHeads;
    public int GridSize => ImgSize / PatchSize;
    public int NumPatches => GridSize * GridSize;

    /// <summary>Patches plus the CLS token.</summary>
    public int SeqLen => NumPatches + 1;

    /// <summary>fc1's output width: value and gate packed together, timm's <c>int(embed_dim * mlp_ratio)</c>.</summary>
    public int MlpPackedHidden => (int)(EmbedDim * MlpRatio);

    /// <summary>fc2's input width (half the packed width).</summary>
    public int MlpHidden => MlpPackedHidden / 2;

    /// <summary>The published Prov-GigaPath tile encoder (hf_hub:prov-gigapath/prov-gigapath).</summary>
    public static TileEncoderConfig ProvGigaPath { get; } = new TileEncoderConfig
    {
        ImgSize = 224,
        PatchSize = 16,
        EmbedDim = 1536,
        Depth = 40,
        NumHeads = 24,
        MlpRatio = 5.33334,
        InitValues = 1e-5,
        NumFeatures = 1536,
        SourceName = "prov-gigapath",
    }.Validated();

    /// <summary>A one-line description recorded in output metadata.</summary>
    public string Describe() =>
        $"{Architecture} img {ImgSize} patch {PatchSize} dim {EmbedDim} depth {Depth} heads {NumHeads} mlp {MlpPackedHidden}";

    public static TileEncoderConfig FromFile(string path)
    {
        if (!File.Exists(path))
            throw new GigaPathException($"{path}: tile encoder config not found");
        return FromJson(File.ReadAllText(path), path);
    }

    public static TileEncoderConfig FromJson(string json, string sourceName)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json);
        }
        catch (JsonException e)
        {
            throw new GigaPathException($"{sourceName}: not valid JSON ({e.Message})", e);
        }
        if (root is not JsonObject obj)
            throw new GigaPathException($"{sourceName}: expected a JSON object");
        return new ConfigReader(obj, sourceName).Read().Validated();
    }

    /// <summary>Checks the values against each other; every failure names the field.</summary>
    public TileEncoderConfig Validated()
    {
        void Fail(string field, string why) => throw new GigaPathException($"{SourceName}: {field} {why}");

        if (InChans != 3) Fail("model_args.in_chans", $"is {InChans}; the tile encoder takes RGB images (3 channels)");
        if (ImgSize <= 0) Fail("model_args.img_size", $"must be positive, got {ImgSize}");
        if (PatchSize <= 0) Fail("model_args.patch_size", $"must be positive, got {PatchSize}");
        if (ImgSize % PatchSize != 0) Fail("model_args.img_size", $"{ImgSize} is not divisible by patch_size {PatchSize}");
        if (EmbedDim <= 0) Fail("model_args.embed_dim", $"must be positive, got {EmbedDim}");
        if (Depth <= 0) Fail("model_args.depth", $"must be positive, got {Depth}");
        if (NumHeads <= 0) Fail("model_args.num_heads", $"must be positive, got {NumHeads}");
        if (EmbedDim % NumHeads != 0) Fail("model_args.embed_dim", $"{EmbedDim} is not divisible by num_heads {NumHeads}");
        if (!(MlpRatio > 0) || double.IsInfinity(MlpRatio)) Fail("model_args.mlp_ratio", $"must be positive, got {MlpRatio}");
        if (MlpPackedHidden % 2 != 0 || MlpPackedHidden == 0)
            Fail("model_args.mlp_ratio", $"{MlpRatio} gives an fc1 width int({EmbedDim} * {MlpRatio}) = {MlpPackedHidden}, which must be even and positive (SwiGLU packs value and gate; timm refuses an odd width)");
        if (NumFeatures != EmbedDim) Fail("num_features", $"is {NumFeatures} but embed_dim is {EmbedDim}; without a head they must be equal");
        if (GlobalPool != "token") Fail("global_pool", $"is \"{GlobalPool}\"; only \"token\" (CLS token after the final norm) is supported");
        if (Mean.Count != InChans) Fail("pretrained_cfg.mean", $"has {Mean.Count} values, expected {InChans}");
        if (Std.Count != InChans) Fail("pretrained_cfg.std", $"has {Std.Count} values, expected {InChans}");
        if (Std.Any(s => !(s > 0))) Fail("pretrained_cfg.std", "values must be positive");
        return this;
    }

    /// <summary>The HF timm-style config.json that <see cref="FromJson"/> reads back (and timm can build from).</summary>
    public string ToJson()
    {
        var obj = new JsonObject
        {
            ["architecture"] = Architecture,
            ["num_classes"] = 0,
            ["num_features"] = NumFeatures,
            ["global_pool"] = GlobalPool,
            ["model_args"] = new JsonObject
            {
                ["img_size"] = ImgSize,
                ["in_chans"] = InChans,
                ["patch_size"] = PatchSize,
                ["embed_dim"] = EmbedDim,
                ["depth"] = Depth,
                ["num_heads"] = NumHeads,
                ["init_values"] = InitValues,
                ["mlp_ratio"] = MlpRatio,
                ["num_classes"] = 0,
            },
            ["pretrained_cfg"] = new JsonObject
            {
                ["tag"] = "",
                ["custom_load"] = false,
                ["input_size"] = new JsonArray(InChans, ImgSize, ImgSize),
                ["fixed_input_size"] = true,
                ["interpolation"] = "bicubic",
                ["crop_pct"] = 0.875,
                ["crop_mode"] = "center",
                ["mean"] = new JsonArray(Mean.Select(v => (JsonNode?)v).ToArray()),
                ["std"] = new JsonArray(Std.Select(v => (JsonNode?)v).ToArray()),
                ["num_classes"] = 0,
                ["pool_size"] = null,
                ["first_conv"] = "patch_embed.proj",
                ["classifier"] = "head",
            },
        };
        return obj.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n";
    }

    public bool Equals(TileEncoderConfig? other) =>
        other is not null && Architecture == other.Architecture && ImgSize == other.ImgSize && InChans == other.InChans
        && PatchSize == other.PatchSize && EmbedDim == other.EmbedDim && Depth == other.Depth && NumHeads == other.NumHeads
        && MlpRatio.Equals(other.MlpRatio) && InitValues.Equals(other.InitValues) && NumFeatures == other.NumFeatures
        && GlobalPool == other.GlobalPool && Mean.SequenceEqual(other.Mean) && Std.SequenceEqual(other.Std);

    public override int GetHashCode() => HashCode.Combine(Architecture, ImgSize, PatchSize, EmbedDim, Depth, NumHeads, MlpRatio);
}
