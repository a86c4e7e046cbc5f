using System.Text.Json;
using System.Text.Json.Nodes;

namespace GigaPath.Models.Slide;

/// <summary>
/// config.json of a slide-encoder folder, in the fixtures' format (snake_case keys as in the reference). Fields that
/// would change the math must hold the one value this engine implements; descriptive fields are accepted and ignored;
/// anything else is an error naming the field, so a typo never silently falls back to a default. Fields are read
/// with <see cref="ConfigJson"/>, the same strict reader as the tile encoder's config.
/// </summary>
internal static class SlideEncoderConfigJson
{
    /// <summary>Flags the reference exposes whose only supported value is the production one.</summary>
    private static readonly Dictionary<string, object> FixedValues = new(StringComparer.Ordinal)
    {
        ["subln"] = true,
        ["encoder_normalize_before"] = true,
        ["deepnorm"] = false,
        ["normalize_output"] = true,
        ["no_scale_embedding"] = true,
        ["layernorm_embedding"] = false,
        ["attention_softmax_scale"] = "head_dim**-0.5",
    };

    /// <summary>Descriptive or training-only fields (identity in eval mode).</summary>
    private static readonly HashSet<string> Informational = new(StringComparer.Ordinal)
    {
        "model_family", "reference", "description", "architecture", "attention_dropout", "dropout", "drop_path_rate",
        "dropout_train_only", "drop_path_rate_train_only", "global_pool_default", "weight_init", "inputs",
        "last_hidden_state_slicing", "engine", "engine_version",
    };

    private static readonly HashSet<string> ModelFields = new(StringComparer.Ordinal)
    {
        "in_chans", "embed_dim", "depth", "num_heads", "head_dim", "mlp_ratio", "ffn_dim", "segment_length",
        "dilated_ratio", "max_wsi_size", "slide_ngrids", "tile_size", "outer_norm_eps", "encoder_layernorm_eps",
        "activation",
    };

    public static SlideEncoderConfig Parse(string json, string source) => Parse(ConfigJson.Parse(json, source).Root, source);

    public static SlideEncoderConfig Parse(JsonObject obj, string source)
    {
        var json = new ConfigJson(obj, source);
        foreach (var (key, value) in obj)
        {
            if (ModelFields.Contains(key) || Informational.Contains(key)) continue;
            if (FixedValues.TryGetValue(key, out var expected))
            {
                CheckFixed(source, key, value, expected);
                continue;
            }
            throw new ModelConfigException($"{source}: unknown field '{key}' (known: {string.Join(", ", ModelFields.Concat(FixedValues.Keys))})", source);
        }

        if (obj["activation"] is { } act)
        {
            var a = act.GetValueKind() == JsonValueKind.String ? act.GetValue<string>() : "";
            if (!a.StartsWith("gelu", StringComparison.Ordinal))
                throw new ModelConfigException($"{source}: activation '{act.ToJsonString()}' is not supported (only exact erf gelu)", source);
        }

        int embed = json.Int(obj["embed_dim"], "embed_dim");
        int heads = json.Int(obj["num_heads"], "num_heads");
        int tileSize = json.OptionalInt(obj["tile_size"], "tile_size") ?? 256;

        int ffn;
        var mlpRatio = json.OptionalDouble(obj["mlp_ratio"], "mlp_ratio");
        var ffnDim = json.OptionalInt(obj["ffn_dim"], "ffn_dim");
        if (ffnDim is { } f)
        {
            ffn = f;
            if (mlpRatio is { } r && Math.Abs(r * embed - f) > 1e-9)
                throw new ModelConfigException($"{source}: ffn_dim {f} disagrees with mlp_ratio {r} × embed_dim {embed}", source);
        }
        else
        {
            double r = mlpRatio ?? 4.0;
            ffn = (int)(embed * r);
        }

        int[] segments;
        var maxWsi = json.OptionalInt(obj["max_wsi_size"], "max_wsi_size");
        var seg = json.OptionalIntArray(obj["segment_length"], "segment_length");
        if (seg is not null)
        {
            segments = seg;
            if (maxWsi is { } m && !SlideEncoderConfig.SegmentLengthsFor(m, tileSize).SequenceEqual(seg))
                throw new ModelConfigException($"{source}: segment_length [{string.Join(", ", seg)}] disagrees with max_wsi_size {m} (which gives [{string.Join(", ", SlideEncoderConfig.SegmentLengthsFor(m, tileSize))}]); give one of them", source, "segment_length");
        }
        else
        {
            segments = SlideEncoderConfig.SegmentLengthsFor(maxWsi ?? 262144, tileSize);
        }

        var config = new SlideEncoderConfig
        {
            InputChannels = json.Int(obj["in_chans"], "in_chans"),
            EmbedDim = embed,
            Depth = json.Int(obj["depth"], "depth"),
            HeadCount = heads,
            FeedForwardDim = ffn,
            SegmentLengths = segments,
            DilationRatios = json.OptionalIntArray(obj["dilated_ratio"], "dilated_ratio") ?? [1, 2, 4, 8, 16],
            PositionGridSize = json.OptionalInt(obj["slide_ngrids"], "slide_ngrids") ?? 1000,
            TileSize = tileSize,
            OuterNormEps = json.OptionalDouble(obj["outer_norm_eps"], "outer_norm_eps") ?? 1e-6,
            EncoderLayerNormEps = json.OptionalDouble(obj["encoder_layernorm_eps"], "encoder_layernorm_eps") ?? 1e-5,
            SourceName = source,
            ReadFromJson = true,
        }.Validate();

        if (json.OptionalInt(obj["head_dim"], "head_dim") is { } hd && hd != config.HeadDim)
            throw new ModelConfigException($"{source}: head_dim {hd} disagrees with embed_dim {embed} / num_heads {heads} = {config.HeadDim}", source);
        return config;
    }

    public static string Write(SlideEncoderConfig c)
    {
        var obj = new JsonObject
        {
            ["model_family"] = "Prov-GigaPath slide encoder (LongNetViT)",
            ["in_chans"] = c.InputChannels,
            ["embed_dim"] = c.EmbedDim,
            ["depth"] = c.Depth,
            ["num_heads"] = c.HeadCount,
            ["head_dim"] = c.HeadDim,
            ["ffn_dim"] = c.FeedForwardDim,
            ["segment_length"] = new JsonArray(c.SegmentLengths.Select(v => (JsonNode)v).ToArray()),
            ["dilated_ratio"] = new JsonArray(c.DilationRatios.Select(v => (JsonNode)v).ToArray()),
            ["slide_ngrids"] = c.PositionGridSize,
            ["tile_size"] = c.TileSize,
            ["outer_norm_eps"] = c.OuterNormEps,
            ["encoder_layernorm_eps"] = c.EncoderLayerNormEps,
            ["activation"] = "gelu (erf)",
        };
        return obj.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }

    private static void CheckFixed(string source, string key, JsonNode? value, object expected)
    {
        bool ok = expected switch
        {
            bool b => value?.GetValueKind() is JsonValueKind.True or JsonValueKind.False && value.GetValue<bool>() == b,
            string s => value?.GetValueKind() == JsonValueKind.String && value.GetValue<string>() == s,
            _ => false,
        };
        if (!ok)
        {
            var shown = expected is bool eb ? (eb ? "true" : "false") : $"\"{expected}\"";
            throw new ModelConfigException($"{source}: {key} = {value?.ToJsonString() ?? "null"} is not supported (this engine implements {key} = {shown} only)", source);
        }
    }
}
