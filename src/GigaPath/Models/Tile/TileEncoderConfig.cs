using System.Text.Json;
using System.Text.Json.Nodes;
using GigaPath.Imaging;

namespace GigaPath.Models.Tile;

/// <summary>
/// A tile encoder's shape and input transform, read from a Hugging Face timm-style <c>config.json</c>
/// (<c>architecture</c>, <c>model_args</c>, <c>num_features</c>, <c>global_pool</c>, <c>pretrained_cfg</c>) as one of
/// the named encoders (<see cref="TileEncoderKind"/>): a timm VisionTransformer with a class token, optional register
/// tokens, learned absolute positions (over the patches only or over every token), optional LayerScale, a packed SwiGLU
/// or GELU MLP, and the encoder's own embedding recipe. Anything else is refused with the field and the file named,
/// because loading weights into a near-miss architecture gives plausible garbage.
/// </summary>
public sealed record TileEncoderConfig
{
    /// <summary>The timm entrypoint of Prov-GigaPath's tile encoder.</summary>
    public const string SupportedArchitecture = "vit_giant_patch14_dinov2";

    /// <summary>Every LayerNorm in the model (timm's ViT uses 1e-6, not torch's default 1e-5).</summary>
    public const double LayerNormEps = 1e-6;

    /// <summary>The timm architecture name (e.g. <see cref="SupportedArchitecture"/>, optionally with a pretrained tag).</summary>
    public string Architecture { get; init; } = SupportedArchitecture;

    /// <summary>Side of the square input in pixels (224 for Prov-GigaPath); must be a multiple of <see cref="PatchSize"/>.</summary>
    public required int ImageSize { get; init; }

    /// <summary>Input channels; always 3 (RGB).</summary>
    public int InputChannels { get; init; } = 3;

    /// <summary>Side of one patch in pixels (16 for Prov-GigaPath).</summary>
    public required int PatchSize { get; init; }

    /// <summary>Token width D, which is also the embedding width (1536 for Prov-GigaPath).</summary>
    public required int EmbedDim { get; init; }

    /// <summary>Number of transformer blocks (40 for Prov-GigaPath).</summary>
    public required int Depth { get; init; }

    /// <summary>Attention heads per block; must divide <see cref="EmbedDim"/>.</summary>
    public required int HeadCount { get; init; }

    /// <summary>MLP width as a multiple of <see cref="EmbedDim"/> (timm's <c>mlp_ratio</c>, 5.33334 for Prov-GigaPath).</summary>
    public required double MlpRatio { get; init; }

    /// <summary>
    /// LayerScale's initial value (timm's <c>init_values</c>), or null for blocks without LayerScale. Only random
    /// initialisation uses the value; the trained gamma is in the checkpoint.
    /// </summary>
    public required double? LayerScaleInit { get; init; }

    /// <summary>
    /// The named encoder this config was read as (<see cref="TileEncoderKind.Name"/>, e.g. "gigapath", "virchow2"):
    /// it fixes what config.json cannot say (the MLP its card passes in code, the embedding recipe).
    /// </summary>
    public string Encoder { get; init; } = "gigapath";

    /// <summary>The <see cref="TileEncoderKind"/> named by <see cref="Encoder"/>.</summary>
    public TileEncoderKind Kind => TileEncoderKind.Get(Encoder);

    /// <summary>Register tokens after the class token (timm's <c>reg_tokens</c>; 4 for H-optimus-0 and Virchow2, 8 for UNI2-h).</summary>
    public int RegisterTokens { get; init; }

    /// <summary>
    /// True when the position embedding covers the patches only and is added before the class and register tokens are
    /// prepended (timm's <c>no_embed_class</c>: H-optimus, UNI2-h); false when it covers every token (GigaPath, Virchow2).
    /// </summary>
    public bool NoEmbedClass { get; init; }

    /// <summary>The blocks' MLP: packed SwiGLU (GigaPath, H-optimus, UNI2-h, Virchow) or GELU (UNI).</summary>
    public TileMlp Mlp { get; init; } = TileMlp.SwiGluPacked;

    /// <summary>How the final-norm tokens become the embedding (<see cref="OutputDim"/> wide).</summary>
    public TileEmbeddingPooling Pooling { get; init; } = TileEmbeddingPooling.ClassToken;

    /// <summary>Width of the returned embedding: <see cref="EmbedDim"/>, or twice that for <see cref="TileEmbeddingPooling.ClassTokenAndPatchMean"/>.</summary>
    public int OutputDim => Pooling == TileEmbeddingPooling.ClassTokenAndPatchMean ? 2 * EmbedDim : EmbedDim;

    /// <summary>
    /// timm's <c>global_pool</c>: "token" for an encoder whose embedding is the class token, "" for one that returns
    /// every token and pools them in its own code (Virchow).
    /// </summary>
    public string GlobalPool { get; init; } = "token";

    /// <summary>The resize filter of the input transform (<c>pretrained_cfg.interpolation</c>).</summary>
    public ResizeInterpolation Interpolation { get; init; } = ResizeInterpolation.Bicubic;

    /// <summary>
    /// The input transform's crop ratio: the shorter side is resized to floor(<see cref="ImageSize"/> / CropFraction), then
    /// center-cropped to <see cref="ImageSize"/> (<c>pretrained_cfg.crop_pct</c>; 0.875 for Prov-GigaPath's reference
    /// transform, 1.0 for the others).
    /// </summary>
    public double CropFraction { get; init; } = 0.875;

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

    /// <summary>Width of one attention head: <see cref="EmbedDim"/> / <see cref="HeadCount"/>.</summary>
    public int HeadDim => EmbedDim / HeadCount;

    /// <summary>Patches per side: <see cref="ImageSize"/> / <see cref="PatchSize"/>.</summary>
    public int GridSize => ImageSize / PatchSize;

    /// <summary>Patches per tile: <see cref="GridSize"/>².</summary>
    public int PatchCount => GridSize * GridSize;

    /// <summary>Tokens before the patches: the class token and the <see cref="RegisterTokens"/>.</summary>
    public int PrefixTokens => 1 + RegisterTokens;

    /// <summary>Every token: class token, registers and patches.</summary>
    public int SequenceLength => PatchCount + PrefixTokens;

    /// <summary>Rows of <c>pos_embed</c>: the patches, plus the prefix tokens unless <see cref="NoEmbedClass"/>.</summary>
    public int PositionRows => NoEmbedClass ? PatchCount : SequenceLength;

    /// <summary>fc1's output width, timm's <c>int(embed_dim * mlp_ratio)</c> (value and gate packed together for SwiGLU).</summary>
    public int MlpPackedHiddenDim => (int)(EmbedDim * MlpRatio);

    /// <summary>fc2's input width: half the packed width for SwiGLU, fc1's width for GELU.</summary>
    public int MlpHiddenDim => Mlp == TileMlp.SwiGluPacked ? MlpPackedHiddenDim / 2 : MlpPackedHiddenDim;

    /// <summary>The published Prov-GigaPath tile encoder (hf_hub:prov-gigapath/prov-gigapath).</summary>
    public static TileEncoderConfig ProvGigaPath { get; } = new TileEncoderConfig
    {
        ImageSize = 224,
        PatchSize = 16,
        EmbedDim = 1536,
        Depth = 40,
        HeadCount = 24,
        MlpRatio = 5.33334,
        LayerScaleInit = 1e-5,
        SourceName = "prov-gigapath",
    }.Validate();

    /// <summary>A one-line description recorded in output metadata.</summary>
    public string Describe() =>
        $"{Encoder}: {Architecture} img {ImageSize} patch {PatchSize} dim {EmbedDim} depth {Depth} heads {HeadCount}" +
        (RegisterTokens > 0 ? $" registers {RegisterTokens}" : "") + $" mlp {(Mlp == TileMlp.Gelu ? "gelu" : "swiglu")} {MlpPackedHiddenDim}" +
        (Pooling == TileEmbeddingPooling.ClassTokenAndPatchMean ? $" embedding cls+mean {OutputDim}" : "");

    /// <summary>Side the shorter image side is resized to: floor(<see cref="ImageSize"/> / <see cref="CropFraction"/>), as timm computes it.</summary>
    public int ResizeSize => (int)Math.Floor(ImageSize / CropFraction);

    /// <summary>
    /// The input transform these weights expect, as timm's eval transform (and Prov-GigaPath's reference code) builds
    /// it: shorter side resized with <see cref="Interpolation"/> to <see cref="ResizeSize"/>, center crop
    /// <see cref="ImageSize"/>, scale to 0..1, normalise with <see cref="Mean"/> / <see cref="Std"/>. Every caller
    /// (library, CLI, server, pipeline) preprocesses through this.
    /// </summary>
    public TilePreprocessor CreatePreprocessor()
    {
        var mean = Mean.Select(v => (float)v).ToArray();
        var std = Std.Select(v => (float)v).ToArray();
        var d = TilePreprocessor.Default;
        if (ImageSize == d.CropSize && ResizeSize == d.ResizeSize && Interpolation == d.Interpolation && mean.SequenceEqual(d.Mean) && std.SequenceEqual(d.Std))
            return d;
        return new TilePreprocessor(ResizeSize, ImageSize, mean, std, Interpolation);
    }

    /// <summary>
    /// Reads and validates a timm-style <c>config.json</c> as the named encoder <paramref name="encoder"/> (see
    /// <see cref="TileEncoderKind.All"/>), or as the one encoder it fits when <paramref name="encoder"/> is null;
    /// errors name the file and the JSON field.
    /// </summary>
    public static TileEncoderConfig Load(string path, string? encoder = null)
    {
        if (!File.Exists(path))
            throw new ModelNotFoundException($"{path}: tile encoder config not found", path);
        return FromJson(File.ReadAllText(path), path, encoder);
    }

    /// <summary>
    /// Parses and validates config.json text as the named encoder <paramref name="encoder"/> (or the one it fits when
    /// null); <paramref name="sourceName"/> names it in messages.
    /// </summary>
    public static TileEncoderConfig FromJson(string json, string sourceName, string? encoder = null)
    {
        return new ConfigReader(ConfigJson.Parse(json, sourceName)).Read(encoder).Validate();
    }

    /// <summary>
    /// Checks the values against each other and returns this config; a failure throws
    /// <see cref="ModelConfigException"/> naming the field (the JSON field for a loaded config, the C# property for one
    /// built in code).
    /// </summary>
    public TileEncoderConfig Validate()
    {
        void Fail(string json, string property, string why) =>
            throw new ModelConfigException($"{SourceName}: {(ReadFromJson ? json : property)} {why}", SourceName, ReadFromJson ? json : property);

        if (InputChannels != 3) Fail("model_args.in_chans", nameof(InputChannels), $"is {InputChannels}; the tile encoder takes RGB images (3 channels)");
        if (ImageSize <= 0) Fail("model_args.img_size", nameof(ImageSize), $"must be positive, got {ImageSize}");
        if (PatchSize <= 0) Fail("model_args.patch_size", nameof(PatchSize), $"must be positive, got {PatchSize}");
        if (ImageSize % PatchSize != 0) Fail("model_args.img_size", nameof(ImageSize), $"{ImageSize} is not divisible by {(ReadFromJson ? "patch_size" : nameof(PatchSize))} {PatchSize}");
        if (EmbedDim <= 0) Fail("model_args.embed_dim", nameof(EmbedDim), $"must be positive, got {EmbedDim}");
        if (Depth <= 0) Fail("model_args.depth", nameof(Depth), $"must be positive, got {Depth}");
        if (HeadCount <= 0) Fail("model_args.num_heads", nameof(HeadCount), $"must be positive, got {HeadCount}");
        if (EmbedDim % HeadCount != 0) Fail("model_args.embed_dim", nameof(EmbedDim), $"{EmbedDim} is not divisible by {(ReadFromJson ? "num_heads" : nameof(HeadCount))} {HeadCount}");
        if (!(MlpRatio > 0) || double.IsInfinity(MlpRatio)) Fail("model_args.mlp_ratio", nameof(MlpRatio), $"must be positive, got {MlpRatio}");
        if (MlpPackedHiddenDim <= 0 || (Mlp == TileMlp.SwiGluPacked && MlpPackedHiddenDim % 2 != 0))
            Fail("model_args.mlp_ratio", nameof(MlpRatio), $"{MlpRatio} gives an fc1 width int({EmbedDim} * {MlpRatio}) = {MlpPackedHiddenDim}, which must be positive" +
                (Mlp == TileMlp.SwiGluPacked ? " and even (SwiGLU packs value and gate; timm refuses an odd width)" : ""));
        if (RegisterTokens < 0) Fail("model_args.reg_tokens", nameof(RegisterTokens), $"must be 0 or more, got {RegisterTokens}");
        if (LayerScaleInit is { } init && !double.IsFinite(init)) Fail("model_args.init_values", nameof(LayerScaleInit), $"must be finite, got {init}");
        string expectedPool = Pooling == TileEmbeddingPooling.ClassToken ? "token" : "";
        if (GlobalPool != expectedPool)
            Fail("global_pool", nameof(GlobalPool), $"is \"{GlobalPool}\"; encoder {Encoder} {(expectedPool == "token" ? "embeds with the class token (\"token\")" : "pools the tokens itself (\"\")")}");
        if (!(CropFraction > 0 && CropFraction <= 1)) Fail("pretrained_cfg.crop_pct", nameof(CropFraction), $"must be in (0, 1], got {CropFraction}");
        if (!Enum.IsDefined(Interpolation)) Fail("pretrained_cfg.interpolation", nameof(Interpolation), $"is {Interpolation}");
        if (Mean is null || Mean.Count != InputChannels) Fail("pretrained_cfg.mean", nameof(Mean), $"has {Mean?.Count ?? 0} values, expected {InputChannels}");
        if (Std is null || Std.Count != InputChannels) Fail("pretrained_cfg.std", nameof(Std), $"has {Std?.Count ?? 0} values, expected {InputChannels}");
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
            ["num_features"] = EmbedDim,
            ["global_pool"] = GlobalPool,
            ["model_args"] = new JsonObject
            {
                ["img_size"] = ImageSize,
                ["in_chans"] = InputChannels,
                ["patch_size"] = PatchSize,
                ["embed_dim"] = EmbedDim,
                ["depth"] = Depth,
                ["num_heads"] = HeadCount,
                ["init_values"] = LayerScaleInit,
                ["mlp_ratio"] = MlpRatio,
                ["reg_tokens"] = RegisterTokens,
                ["no_embed_class"] = NoEmbedClass,
                ["num_classes"] = 0,
            },
            ["pretrained_cfg"] = new JsonObject
            {
                ["tag"] = "",
                ["custom_load"] = false,
                ["input_size"] = new JsonArray(InputChannels, ImageSize, ImageSize),
                ["fixed_input_size"] = true,
                ["interpolation"] = Interpolation == ResizeInterpolation.Bilinear ? "bilinear" : "bicubic",
                ["crop_pct"] = CropFraction,
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
        other is not null && Architecture == other.Architecture && ImageSize == other.ImageSize && InputChannels == other.InputChannels
        && PatchSize == other.PatchSize && EmbedDim == other.EmbedDim && Depth == other.Depth && HeadCount == other.HeadCount
        && MlpRatio.Equals(other.MlpRatio) && LayerScaleInit.Equals(other.LayerScaleInit)
        && Encoder == other.Encoder && RegisterTokens == other.RegisterTokens && NoEmbedClass == other.NoEmbedClass && Mlp == other.Mlp
        && Pooling == other.Pooling && Interpolation == other.Interpolation && CropFraction.Equals(other.CropFraction)
        && GlobalPool == other.GlobalPool && Mean.SequenceEqual(other.Mean) && Std.SequenceEqual(other.Std);

    /// <inheritdoc/>
    public override int GetHashCode() => HashCode.Combine(Encoder, Architecture, ImageSize, PatchSize, EmbedDim, Depth, HeadCount, MlpRatio);
}
