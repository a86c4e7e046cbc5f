using System.Text.Json;
using System.Text.Json.Nodes;

namespace GigaPath.Models.Tile;

/// <summary>Reads the fields of a timm-style config.json, one typed getter per kind, each failure naming the field.</summary>
internal sealed class ConfigReader
{
    private readonly JsonObject _root;
    private readonly string _source;

    /// <summary>model_args that change the architecture: accepted only with the value this port implements.</summary>
    private static readonly Dictionary<string, JsonValueKind[]> FixedArgs = new()
    {
        ["class_token"] = [JsonValueKind.True],
        ["qkv_bias"] = [JsonValueKind.True],
        ["no_embed_class"] = [JsonValueKind.False],
        ["pre_norm"] = [JsonValueKind.False],
        ["final_norm"] = [JsonValueKind.True],
        ["dynamic_img_size"] = [JsonValueKind.False],
        ["dynamic_img_pad"] = [JsonValueKind.False],
        ["qk_norm"] = [JsonValueKind.False],
        ["fc_norm"] = [JsonValueKind.False, JsonValueKind.Null],
    };

    /// <summary>model_args that only matter for training (dropout rates, init scheme): any value is fine at inference.</summary>
    private static readonly HashSet<string> TrainingOnlyArgs =
    [
        "drop_rate", "pos_drop_rate", "patch_drop_rate", "proj_drop_rate", "attn_drop_rate", "drop_path_rate", "weight_init",
    ];

    public ConfigReader(JsonObject root, string source)
    {
        _root = root;
        _source = source;
    }

    private GigaPathException Error(string field, string why) => new($"{_source}: {field} {why}");

    public TileEncoderConfig Read()
    {
        var architecture = ReadArchitecture();
        if (_root["model_args"] is not JsonObject args)
            throw Error("model_args", "is missing or not an object; it must give img_size, patch_size, embed_dim, depth, num_heads, mlp_ratio and init_values");
        var pretrained = _root["pretrained_cfg"] as JsonObject
            ?? throw Error("pretrained_cfg", "is missing. timm reads a config.json without pretrained_cfg in its legacy form and silently drops model_args, " +
                "building vit_giant_patch14_dinov2 with its defaults (patch 14, img 518) and resampling the checkpoint to fit. " +
                "Add the pretrained_cfg block (input_size, mean, std) so that timm and this engine build the same model");

        foreach (var (key, value) in args)
            CheckModelArg(key, value);

        int inChans = Int(args, "model_args", "in_chans", 3);
        int imgSize = ImgSize(args);
        int numClasses = Int(args, "model_args", "num_classes", 0);
        if (numClasses != 0 || Int(_root, "", "num_classes", 0) != 0)
            throw Error(numClasses != 0 ? "model_args.num_classes" : "num_classes", "must be 0: this engine returns embeddings and has no classifier head");
        string pool = String(_root, "", "global_pool", "token");
        if (args["global_pool"] is not null && String(args, "model_args", "global_pool", pool) != pool)
            throw Error("model_args.global_pool", $"disagrees with global_pool \"{pool}\"");

        int embedDim = Int(args, "model_args", "embed_dim", null);
        int numFeatures = Int(_root, "", "num_features", embedDim);
        if (numFeatures != embedDim)
            throw Error("num_features", $"is {numFeatures} but embed_dim is {embedDim}; without a head they must be equal");
        var cfg = new TileEncoderConfig
        {
            ReadFromJson = true,
            Architecture = architecture,
            SourceName = _source,
            ImgSize = imgSize,
            InChans = inChans,
            PatchSize = Int(args, "model_args", "patch_size", null),
            EmbedDim = embedDim,
            Depth = Int(args, "model_args", "depth", null),
            NumHeads = Int(args, "model_args", "num_heads", null),
            MlpRatio = Double(args, "model_args", "mlp_ratio"),
            InitValues = Double(args, "model_args", "init_values"),
            GlobalPool = pool,
            Mean = Triple(pretrained, "mean", TileEncoderConfig.ImageNetMean),
            Std = Triple(pretrained, "std", TileEncoderConfig.ImageNetStd),
        };
        CheckInputSize(pretrained, cfg);
        return cfg;
    }

    private string ReadArchitecture()
    {
        if (_root["architecture"] is not JsonValue v || v.GetValueKind() != JsonValueKind.String)
            throw Error("architecture", "is missing; expected \"vit_giant_patch14_dinov2\"");
        var name = v.GetValue<string>();
        // timm names may carry a pretrained tag ("vit_giant_patch14_dinov2.lvd142m"); the tag does not change the model.
        var baseName = name.Split('.', 2)[0];
        if (baseName != TileEncoderConfig.SupportedArchitecture)
            throw Error("architecture", $"\"{name}\" is not supported; only timm's \"{TileEncoderConfig.SupportedArchitecture}\" family " +
                "(ViT with CLS token, LayerScale, packed SwiGLU MLP and CLS pooling) is implemented");
        return name;
    }

    private void CheckModelArg(string key, JsonNode? value)
    {
        switch (key)
        {
            case "img_size" or "in_chans" or "patch_size" or "embed_dim" or "depth" or "num_heads" or "init_values"
                or "mlp_ratio" or "num_classes" or "global_pool":
                return;
            case "reg_tokens":
                if (Int(value, "model_args.reg_tokens", 0) != 0)
                    throw Error("model_args.reg_tokens", "must be 0: register tokens are not part of this architecture");
                return;
        }
        if (TrainingOnlyArgs.Contains(key)) return;
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

    private int ImgSize(JsonObject args)
    {
        if (args["img_size"] is JsonArray arr)
        {
            if (arr.Count != 2 || arr[0]?.ToJsonString() != arr[1]?.ToJsonString())
                throw Error("model_args.img_size", $"is {arr.ToJsonString()}; only square inputs are supported");
            return Int(arr[0], "model_args.img_size", null);
        }
        return Int(args["img_size"], "model_args.img_size", null);
    }

    private void CheckInputSize(JsonObject pretrained, TileEncoderConfig cfg)
    {
        if (pretrained["input_size"] is null) return;
        if (pretrained["input_size"] is not JsonArray arr || arr.Count != 3)
            throw Error("pretrained_cfg.input_size", "must be [channels, height, width]");
        var values = arr.Select(n => Int(n, "pretrained_cfg.input_size", null)).ToArray();
        if (values[0] != cfg.InChans || values[1] != cfg.ImgSize || values[2] != cfg.ImgSize)
            throw Error("pretrained_cfg.input_size", $"[{string.Join(", ", values)}] disagrees with model_args (in_chans {cfg.InChans}, img_size {cfg.ImgSize})");
    }

    private int Int(JsonObject obj, string prefix, string key, int? fallback) =>
        Int(obj[key], prefix.Length == 0 ? key : $"{prefix}.{key}", fallback);

    private int Int(JsonNode? node, string field, int? fallback)
    {
        if (node is null)
            return fallback ?? throw Error(field, "is missing");
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number)
        {
            if (v.TryGetValue<int>(out int i)) return i;
            if (v.TryGetValue<double>(out double d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue) return (int)d;
        }
        throw Error(field, $"must be an integer, got {node.ToJsonString()}");
    }

    private double Double(JsonObject obj, string prefix, string key)
    {
        string field = $"{prefix}.{key}";
        var node = obj[key];
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<double>(out double d))
            return d;
        if (node is null && key == "init_values")
            throw Error(field, "is missing or null; without it timm builds no LayerScale, which this architecture requires");
        throw Error(field, node is null ? "is missing" : $"must be a number, got {node.ToJsonString()}");
    }

    private string String(JsonObject obj, string prefix, string key, string fallback)
    {
        string field = prefix.Length == 0 ? key : $"{prefix}.{key}";
        var node = obj[key];
        if (node is null) return fallback;
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.String) return v.GetValue<string>();
        throw Error(field, $"must be a string, got {node.ToJsonString()}");
    }

    private IReadOnlyList<double> Triple(JsonObject pretrained, string key, IReadOnlyList<double> fallback)
    {
        var node = pretrained[key];
        if (node is null) return fallback;
        if (node is JsonArray arr && arr.All(n => n is JsonValue v && v.GetValueKind() == JsonValueKind.Number))
            return arr.Select(n => n!.GetValue<double>()).ToArray();
        throw Error($"pretrained_cfg.{key}", $"must be an array of numbers, got {node.ToJsonString()}");
    }
}
