using GigaPath.Imaging;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace GigaPath.Models.Tile;

/// <summary>Reads the fields of a timm-style config.json through <see cref="ConfigJson"/>, each failure naming the field.</summary>
internal sealed class ConfigReader
{
    private readonly JsonObject _root;
    private readonly ConfigJson _json;

    /// <summary>model_args that change the architecture: accepted only with the value this port implements.</summary>
    private static readonly Dictionary<string, JsonValueKind[]> FixedArgs = new()
    {
        ["class_token"] = [JsonValueKind.True],
        ["qkv_bias"] = [JsonValueKind.True],
        ["pre_norm"] = [JsonValueKind.False],
        ["final_norm"] = [JsonValueKind.True],
        ["dynamic_img_pad"] = [JsonValueKind.False],
        ["qk_norm"] = [JsonValueKind.False],
        ["fc_norm"] = [JsonValueKind.False, JsonValueKind.Null],
    };

    /// <summary>
    /// model_args that do not change the model at its own input size: <c>dynamic_img_size</c> only resamples the
    /// position embedding for other sizes, and this engine takes img_size inputs only.
    /// </summary>
    private static readonly HashSet<string> InertArgs = ["dynamic_img_size"];

    /// <summary>model_args that only matter for training (dropout rates, init scheme): any value is fine at inference.</summary>
    private static readonly HashSet<string> TrainingOnlyArgs =
    [
        "drop_rate", "pos_drop_rate", "patch_drop_rate", "proj_drop_rate", "attn_drop_rate", "drop_path_rate", "weight_init",
    ];

    public ConfigReader(ConfigJson json)
    {
        _root = json.Root;
        _json = json;
    }

    private ModelConfigException Error(string field, string why) => _json.Error(field, why);

    /// <summary>Reads the config as encoder <paramref name="encoderName"/>, or as the one named encoder it fits.</summary>
    public TileEncoderConfig Read(string? encoderName)
    {
        var (architecture, timm) = ReadArchitecture();
        if (_root["model_args"] is not JsonObject args)
            throw Error("model_args", "is missing or not an object; it must give at least img_size (and what the architecture's defaults do not: patch_size, embed_dim, depth, num_heads, mlp_ratio, init_values)");
        var pretrained = _root["pretrained_cfg"] as JsonObject
            ?? throw Error("pretrained_cfg", $"is missing. timm reads a config.json without pretrained_cfg in its legacy form and silently drops model_args, " +
                $"building {timm.Name} with its defaults (patch {timm.PatchSize}, img {timm.ImageSize}) and resampling the checkpoint to fit. " +
                "Add the pretrained_cfg block (input_size, mean, std) so that timm and this engine build the same model");

        foreach (var (key, value) in args)
            CheckModelArg(key, value);

        int inChans = Int(args, "model_args", "in_chans", 3);
        int imgSize = ImageSize(args, timm.ImageSize);
        int numClasses = Int(args, "model_args", "num_classes", 0);
        if (numClasses != 0 || Int(_root, "", "num_classes", 0) != 0)
            throw Error(numClasses != 0 ? "model_args.num_classes" : "num_classes", "must be 0: this engine returns embeddings and has no classifier head");
        string pool = String(_root, "", "global_pool", "token");
        if (args["global_pool"] is not null && String(args, "model_args", "global_pool", pool) != pool)
            throw Error("model_args.global_pool", $"disagrees with global_pool \"{pool}\"");

        int embedDim = Int(args, "model_args", "embed_dim", timm.EmbedDim);
        int numFeatures = Int(_root, "", "num_features", embedDim);
        if (numFeatures != embedDim)
            throw Error("num_features", $"is {numFeatures} but embed_dim is {embedDim}; without a head they must be equal");
        var values = new ArgValues(
            PatchSize: Int(args, "model_args", "patch_size", timm.PatchSize),
            RegisterTokens: Int(args, "model_args", "reg_tokens", timm.RegisterTokens),
            NoEmbedClass: Bool(args, "model_args", "no_embed_class", timm.NoEmbedClass),
            MlpRatio: args["mlp_ratio"] is null ? timm.MlpRatio : Double(args, "model_args", "mlp_ratio"),
            GlobalPool: pool);
        var kind = Kind(encoderName, architecture, timm, values);

        // A card's code-level kwargs override config.json (timm: dict(model_args, **kwargs)); the architecture's
        // defaults are overridden by both.
        double? initValues = args.ContainsKey("init_values") ? NullableDouble(args, "model_args", "init_values") : timm.LayerScaleInit;
        if (kind.CodeInitValues is { } codeInit) initValues = codeInit;
        if (initValues is null)
            throw Error("model_args.init_values", $"is missing or null, so timm would build no LayerScale; encoder {kind.Name} has LayerScale (ls1.gamma, ls2.gamma)");

        var cfg = new TileEncoderConfig
        {
            ReadFromJson = true,
            Encoder = kind.Name,
            Architecture = architecture,
            SourceName = _json.Source,
            ImageSize = imgSize,
            InputChannels = inChans,
            PatchSize = values.PatchSize,
            EmbedDim = embedDim,
            Depth = Int(args, "model_args", "depth", timm.Depth),
            HeadCount = Int(args, "model_args", "num_heads", timm.HeadCount),
            MlpRatio = values.MlpRatio,
            LayerScaleInit = initValues,
            RegisterTokens = values.RegisterTokens,
            NoEmbedClass = values.NoEmbedClass,
            Mlp = kind.CodeMlp ?? timm.Mlp,
            Pooling = kind.Pooling,
            GlobalPool = pool,
            Interpolation = Interpolation(pretrained),
            CropFraction = kind.ReferenceCropFraction ?? CropFraction(pretrained),
            Mean = Triple(pretrained, "mean", TileEncoderConfig.ImageNetMean),
            Std = Triple(pretrained, "std", TileEncoderConfig.ImageNetStd),
        };
        // The config's own consistency first (a broken config is broken whatever it claims to be), then its fit.
        cfg.Validate();
        CheckInputSize(pretrained, cfg);
        if (Misfit(kind, values) is { } misfit)
            throw Error(misfit.Field, misfit.Why);
        return cfg;
    }

    /// <summary>The values of model_args that tell the named encoders of one architecture apart.</summary>
    private sealed record ArgValues(int PatchSize, int RegisterTokens, bool NoEmbedClass, double MlpRatio, string GlobalPool);

    /// <summary>The first field of <paramref name="values"/> that <paramref name="kind"/> does not allow, as (field, why), or null.</summary>
    private static (string Field, string Why)? Misfit(TileEncoderKind kind, ArgValues values)
    {
        if (values.PatchSize != kind.PatchSize)
            return ("model_args.patch_size", $"is {values.PatchSize}; encoder {kind.Name} has patch {kind.PatchSize}");
        if (values.RegisterTokens != kind.RegisterTokens)
            return ("model_args.reg_tokens", $"is {values.RegisterTokens}; encoder {kind.Name} has {kind.RegisterTokens} register tokens");
        if (values.NoEmbedClass != kind.NoEmbedClass)
            return ("model_args.no_embed_class", $"is {(values.NoEmbedClass ? "true" : "false")}; encoder {kind.Name} has {(kind.NoEmbedClass ? "true (positions over the patches only)" : "false (positions over every token)")}");
        if (kind.RequiredMlpRatio is { } ratio && values.MlpRatio != ratio)
            return ("model_args.mlp_ratio", $"is {values.MlpRatio}; encoder {kind.Name} has {ratio}");
        string pool = kind.Pooling == TileEmbeddingPooling.ClassToken ? "token" : "";
        if (values.GlobalPool != pool)
            return ("global_pool", $"is \"{values.GlobalPool}\"; encoder {kind.Name} has \"{pool}\"");
        return null;
    }

    private TileEncoderKind Kind(string? encoderName, string architecture, TimmArchitecture timm, ArgValues values)
    {
        if (encoderName is not null)
        {
            var kind = TileEncoderKind.Get(encoderName);
            if (kind.Architecture != timm.Name)
                throw Error("architecture", $"\"{architecture}\" does not fit encoder {kind.Name}, which is timm's \"{kind.Architecture}\"");
            return kind;
        }
        var candidates = TileEncoderKind.All.Where(k => k.Architecture == timm.Name).ToList();
        // One encoder of this architecture: read as it, and its fields checked once the config is known to be consistent.
        if (candidates.Count == 1)
            return candidates[0];
        var fitting = candidates.Where(k => Misfit(k, values) is null).ToList();
        if (fitting.Count == 1)
            return fitting[0];
        if (fitting.Count > 1)
            throw Error("architecture", $"\"{architecture}\" with these model_args fits encoders {string.Join(" and ", fitting.Select(k => k.Name))} alike; name the encoder to load it as");
        var misfits = candidates.Select(k => (k.Name, Misfit: Misfit(k, values)!.Value)).Select(m => $"{m.Name}: {m.Misfit.Field} {m.Misfit.Why}");
        throw Error("architecture", $"\"{architecture}\" with these model_args fits none of its encoders ({string.Join(", ", misfits)})");
    }

    private (string Name, TimmArchitecture Timm) ReadArchitecture()
    {
        string supported = string.Join(", ", TileEncoderKind.All.Select(k => $"{k.Architecture} ({k.Name})").Distinct());
        if (_root["architecture"] is not JsonValue v || v.GetValueKind() != JsonValueKind.String)
            throw Error("architecture", $"is missing; expected one of {supported}");
        var name = v.GetValue<string>();
        // timm names may carry a pretrained tag ("vit_giant_patch14_dinov2.lvd142m"); the tag does not change the model.
        var baseName = name.Split('.', 2)[0];
        if (!TimmArchitecture.All.TryGetValue(baseName, out var timm))
            throw Error("architecture", $"\"{name}\" is not supported; the supported timm architectures are {supported}");
        return (name, timm);
    }

    private void CheckModelArg(string key, JsonNode? value)
    {
        switch (key)
        {
            case "img_size" or "in_chans" or "patch_size" or "embed_dim" or "depth" or "num_heads" or "init_values"
                or "mlp_ratio" or "num_classes" or "global_pool" or "reg_tokens" or "no_embed_class":
                return;
        }
        if (TrainingOnlyArgs.Contains(key)) return;
        if (InertArgs.Contains(key))
        {
            if (value?.GetValueKind() is not (JsonValueKind.True or JsonValueKind.False))
                throw Error($"model_args.{key}", $"must be true or false, got {value?.ToJsonString() ?? "null"}");
            return;
        }
        if (FixedArgs.TryGetValue(key, out var allowed))
        {
            var kind = value?.GetValueKind() ?? JsonValueKind.Null;
            if (!allowed.Contains(kind))
                throw Error($"model_args.{key}", $"is {value?.ToJsonString() ?? "null"}; this engine implements only {Describe(allowed[0])}");
            return;
        }
        throw Error($"model_args.{key}", "is not supported by this engine (it would change the architecture or is unknown)");
    }

    private static string Describe(JsonValueKind k) => k switch
    {
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        _ => "null",
    };

    private int ImageSize(JsonObject args, int fallback)
    {
        if (args["img_size"] is JsonArray arr)
        {
            if (arr.Count != 2 || arr[0]?.ToJsonString() != arr[1]?.ToJsonString())
                throw Error("model_args.img_size", $"is {arr.ToJsonString()}; only square inputs are supported");
            return Int(arr[0], "model_args.img_size", null);
        }
        return Int(args["img_size"], "model_args.img_size", fallback);
    }

    private void CheckInputSize(JsonObject pretrained, TileEncoderConfig cfg)
    {
        if (pretrained["input_size"] is null) return;
        if (pretrained["input_size"] is not JsonArray arr || arr.Count != 3)
            throw Error("pretrained_cfg.input_size", "must be [channels, height, width]");
        var values = arr.Select(n => Int(n, "pretrained_cfg.input_size", null)).ToArray();
        if (values[0] != cfg.InputChannels || values[1] != cfg.ImageSize || values[2] != cfg.ImageSize)
            throw Error("pretrained_cfg.input_size", $"[{string.Join(", ", values)}] disagrees with model_args (in_chans {cfg.InputChannels}, img_size {cfg.ImageSize})");
    }

    private int Int(JsonObject obj, string prefix, string key, int? fallback) =>
        Int(obj[key], prefix.Length == 0 ? key : $"{prefix}.{key}", fallback);

    private int Int(JsonNode? node, string field, int? fallback) => _json.Int(node, field, fallback);

    private double Double(JsonObject obj, string prefix, string key) =>
        NullableDouble(obj, prefix, key) ?? throw Error($"{prefix}.{key}", "is missing");

    private double? NullableDouble(JsonObject obj, string prefix, string key) => _json.OptionalDouble(obj[key], $"{prefix}.{key}");

    private bool Bool(JsonObject obj, string prefix, string key, bool fallback) => _json.Bool(obj[key], $"{prefix}.{key}", fallback);

    private ResizeInterpolation Interpolation(JsonObject pretrained) => String(pretrained, "pretrained_cfg", "interpolation", "bicubic") switch
    {
        "bicubic" => ResizeInterpolation.Bicubic,
        "bilinear" => ResizeInterpolation.Bilinear,
        var other => throw Error("pretrained_cfg.interpolation", $"is \"{other}\"; this engine implements Pillow's \"bicubic\" and \"bilinear\""),
    };

    private double CropFraction(JsonObject pretrained)
    {
        string mode = String(pretrained, "pretrained_cfg", "crop_mode", "center");
        if (mode != "center")
            throw Error("pretrained_cfg.crop_mode", $"is \"{mode}\"; this engine implements timm's \"center\" crop");
        // timm's DEFAULT_CROP_PCT when the config gives none.
        return NullableDouble(pretrained, "pretrained_cfg", "crop_pct") ?? 0.875;
    }

    private string String(JsonObject obj, string prefix, string key, string fallback) =>
        _json.String(obj[key], prefix.Length == 0 ? key : $"{prefix}.{key}", fallback);

    private IReadOnlyList<double> Triple(JsonObject pretrained, string key, IReadOnlyList<double> fallback) =>
        _json.OptionalNumbers(pretrained[key], $"pretrained_cfg.{key}") ?? fallback;
}
