using System.Text.Json;
using System.Text.Json.Nodes;
using GigaPath.Imaging;

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

    /// <summary>The timm architecture name (<see cref="SupportedArchitecture"/>, optionally with a pretrained tag).</summary>
    public string Architecture { get; init; } = SupportedArchitecture;

    /// <summary>Side of the square input in pixels (224 for Prov-GigaPath); must be a multiple of <see cref="PatchSize"/>.</summary>
    public required int ImgSize { get; init; }

    /// <summary>Input channels; always 3 (RGB).</summary>
    public int InChans { get; init; } = 3;

    /// <summary>Side of one patch in pixels (16 for Prov-GigaPath).</summary>
    public required int PatchSize { get; init; }

    /// <summary>Token width D, which is also the embedding width (1536 for Prov-GigaPath).</summary>
    public required int EmbedDim { get; init; }

    /// <summary>Number of transformer blocks (40 for Prov-GigaPath).</summary>
    public required int Depth { get; init; }

    /// <summary>Attention heads per block; must divide <see cref="EmbedDim"/>.</summary>
    public required int NumHeads { get; init; }

    /// <summary>MLP width as a multiple of <see cref="EmbedDim"/> (timm's <c>mlp_ratio</c>, 5.33334 for Prov-GigaPath).</summary>
    public required double MlpRatio { get; init; }

    /// <summary>LayerScale's initial value; only used by random initialisation, the trained gamma is in the checkpoint.</summary>
    public required double InitValues { get; init; }

    /// <summary>Width of the returned embedding: always <see cref="EmbedDim"/> (the model has no head).</summary>
    public int NumFeatures => EmbedDim;

    /// <summary>How tokens become the embedding; only "token" (the CLS token after the final norm) is supported.</summary>
    public string GlobalPool { get; init; } = "token";

    /// <summary>Per-channel mean (RGB) the weights were trained with (<c>pretrained_cfg.mean</c>), for pixel values in 0..1.</summary>
    public IReadOnlyList<double> Mean { get; init; } = ImageNetMean;

    /// <summary>Per-channel standard deviation (RGB) the weights were trained with (<c>pretrained_cfg.std</c>).</summary>
    public IReadOnlyList<double> Std { get; init; } = ImageNetStd;

    /// <summary>Where the config came from (a file path, or "built-in"), for messages and provenance.</summary>
    public string SourceName { get; init; } = "built-in";

    /// <summary>True when read from a config.json: messages then name JSON fields, otherwise C# properties.</summary>
    internal bool ReadFromJson { get; init; }

    /// <summary>ImageNet's per-channel mean (RGB), timm's default.</summary>
    public static readonly IReadOnlyList<double> ImageNetMean = [0.485, 0.456, 0.406];

    /// <summary>ImageNet's per-channel standard deviation (RGB), timm's default.</summary>
    public static readonly IReadOnlyList<double> ImageNetStd = [0.229, 0.224, 0.225];

    /// <summary>Width of one attention head: <see cref="EmbedDim"/> / <see cref="NumHeads"/>.</summary>
    public int HeadDim => EmbedDim / NumHeads;

    /// <summary>Patches per side: <see cref="ImgSize"/> / <see cref="PatchSize"/>.</summary>
    public int GridSize => ImgSize / PatchSize;

    /// <summary>Patches per tile: <see cref="GridSize"/>².</summary>
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
        SourceName = "prov-gigapath",
    }.Validate();

    /// <summary>A one-line description recorded in output metadata.</summary>
    public string Describe() =>
        $"{Architecture} img {ImgSize} patch {PatchSize} dim {EmbedDim} depth {Depth} heads {NumHeads} mlp {MlpPackedHidden}";

    /// <summary>
    /// The input transform these weights expect, as in the reference: shorter side resized (bicubic) to
    /// <c>floor(ImgSize / 0.875)</c> (256 for 224), center crop <see cref="ImgSize"/>, scale to 0..1, normalise with
    /// <see cref="Mean"/> / <see cref="Std"/>. Every caller (library, CLI, server, pipeline) preprocesses through this.
    /// </summary>
    public TilePreprocessor CreatePreprocessor()
    {
        var mean = Mean.Select(v => (float)v).ToArray();
        var std = Std.Select(v => (float)v).ToArray();
        var d = TilePreprocessor.Default;
        if (ImgSize == d.CropSize && mean.SequenceEqual(d.Mean) && std.SequenceEqual(d.Std))
            return d;
        return new TilePreprocessor((int)Math.Floor(ImgSize / 0.875), ImgSize, mean, std);
    }

    /// <summary>Reads and validates a timm-style <c>config.json</c>; errors name the file and the JSON field.</summary>
    public static TileEncoderConfig Load(string path)
    {
        if (!File.Exists(path))
            throw new GigaPathException($"{path}: tile encoder config not found");
        return FromJson(File.ReadAllText(path), path);
    }

    /// <summary>Parses and validates config.json text; <paramref name="sourceName"/> names it in messages.</summary>
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
        return new ConfigReader(obj, sourceName).Read().Validate();
    }

    /// <summary>
    /// Checks the values against each other and returns this config; a failure throws
    /// <see cref="GigaPathException"/> naming the field (the JSON field for a loaded config, the C# property for one
    /// built in code).
    /// </summary>
    public TileEncoderConfig Validate()
    {
        void Fail(string json, string property, string why) =>
            throw new GigaPathException($"{SourceName}: {(ReadFromJson ? json : property)} {why}");

        if (InChans != 3) Fail("model_args.in_chans", nameof(InChans), $"is {InChans}; the tile encoder takes RGB images (3 channels)");
        if (ImgSize <= 0) Fail("model_args.img_size", nameof(ImgSize), $"must be positive, got {ImgSize}");
        if (PatchSize <= 0) Fail("model_args.patch_size", nameof(PatchSize), $"must be positive, got {PatchSize}");
        if (ImgSize % PatchSize != 0) Fail("model_args.img_size", nameof(ImgSize), $"{ImgSize} is not divisible by {(ReadFromJson ? "patch_size" : nameof(PatchSize))} {PatchSize}");
        if (EmbedDim <= 0) Fail("model_args.embed_dim", nameof(EmbedDim), $"must be positive, got {EmbedDim}");
        if (Depth <= 0) Fail("model_args.depth", nameof(Depth), $"must be positive, got {Depth}");
        if (NumHeads <= 0) Fail("model_args.num_heads", nameof(NumHeads), $"must be positive, got {NumHeads}");
        if (EmbedDim % NumHeads != 0) Fail("model_args.embed_dim", nameof(EmbedDim), $"{EmbedDim} is not divisible by {(ReadFromJson ? "num_heads" : nameof(NumHeads))} {NumHeads}");
        if (!(MlpRatio > 0) || double.IsInfinity(MlpRatio)) Fail("model_args.mlp_ratio", nameof(MlpRatio), $"must be positive, got {MlpRatio}");
        if (MlpPackedHidden % 2 != 0 || MlpPackedHidden == 0)
            Fail("model_args.mlp_ratio", nameof(MlpRatio), $"{MlpRatio} gives an fc1 width int({EmbedDim} * {MlpRatio}) = {MlpPackedHidden}, which must be even and positive (SwiGLU packs value and gate; timm refuses an odd width)");
        if (GlobalPool != "token") Fail("global_pool", nameof(GlobalPool), $"is \"{GlobalPool}\"; only \"token\" (CLS token after the final norm) is supported");
        if (Mean is null || Mean.Count != InChans) Fail("pretrained_cfg.mean", nameof(Mean), $"has {Mean?.Count ?? 0} values, expected {InChans}");
        if (Std is null || Std.Count != InChans) Fail("pretrained_cfg.std", nameof(Std), $"has {Std?.Count ?? 0} values, expected {InChans}");
        if (Std!.Any(s => !(s > 0) || double.IsInfinity(s))) Fail("pretrained_cfg.std", nameof(Std), "values must be positive and finite");
        if (Mean!.Any(m => !double.IsFinite(m))) Fail("pretrained_cfg.mean", nameof(Mean), "values must be finite");
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

    /// <summary>Equal when every value that changes the model or its preprocessing is equal (the source is ignored).</summary>
    public bool Equals(TileEncoderConfig? other) =>
        other is not null && Architecture == other.Architecture && ImgSize == other.ImgSize && InChans == other.InChans
        && PatchSize == other.PatchSize && EmbedDim == other.EmbedDim && Depth == other.Depth && NumHeads == other.NumHeads
        && MlpRatio.Equals(other.MlpRatio) && InitValues.Equals(other.InitValues)
        && GlobalPool == other.GlobalPool && Mean.SequenceEqual(other.Mean) && Std.SequenceEqual(other.Std);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Architecture, ImgSize, PatchSize, EmbedDim, Depth, NumHeads, MlpRatio);
}
