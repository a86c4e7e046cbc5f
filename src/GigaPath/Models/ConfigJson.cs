using System.Text.Json;
using System.Text.Json.Nodes;

namespace GigaPath.Models;

/// <summary>
/// The one strict reader of model config files (a tile encoder's timm-style config.json, a slide encoder's
/// config.json): parses one JSON object and reads typed fields, each failure a <see cref="ModelConfigException"/>
/// whose message starts with the file and the field (<c>model_args.depth</c>) and whose
/// <see cref="ModelConfigException.Field"/> is that field. A wrong type is an error, never a fallback to a default.
/// </summary>
internal sealed class ConfigJson
{
    public ConfigJson(JsonObject root, string source)
    {
        Root = root;
        Source = source;
    }

    /// <summary>The config's top-level object.</summary>
    public JsonObject Root { get; }

    /// <summary>Names the config in errors (a path, or the caller's name for in-memory JSON).</summary>
    public string Source { get; }

    /// <summary>Parses <paramref name="json"/>, which must hold one JSON object.</summary>
    public static ConfigJson Parse(string json, string source)
    {
        JsonNode? root;
        try
        {
            root = JsonNode.Parse(json);
        }
        catch (JsonException e)
        {
            throw new ModelConfigException($"{source}: not valid JSON ({e.Message})", source, null, e);
        }
        return root is JsonObject obj ? new ConfigJson(obj, source) : throw new ModelConfigException($"{source}: must hold a JSON object", source);
    }

    /// <summary>An error about <paramref name="field"/>: "{source}: {field} {why}".</summary>
    public ModelConfigException Error(string field, string why) => new($"{Source}: {field} {why}", Source, field);

    /// <summary>An integer (a JSON number with no fraction), or null when <paramref name="node"/> is absent or null.</summary>
    public int? OptionalInt(JsonNode? node, string field)
    {
        if (node is null) return null;
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number)
        {
            if (v.TryGetValue<int>(out int i)) return i;
            if (v.TryGetValue<double>(out double d) && d == Math.Floor(d) && Math.Abs(d) < int.MaxValue) return (int)d;
        }
        throw Error(field, $"must be an integer, got {node.ToJsonString()}");
    }

    /// <summary>An integer, else <paramref name="fallback"/>; missing with no fallback is an error.</summary>
    public int Int(JsonNode? node, string field, int? fallback = null) =>
        OptionalInt(node, field) ?? fallback ?? throw Error(field, "is missing");

    /// <summary>A number, or null when <paramref name="node"/> is absent or null.</summary>
    public double? OptionalDouble(JsonNode? node, string field)
    {
        if (node is null) return null;
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<double>(out double d))
            return d;
        throw Error(field, $"must be a number, got {node.ToJsonString()}");
    }

    /// <summary>true or false, else <paramref name="fallback"/> when absent.</summary>
    public bool Bool(JsonNode? node, string field, bool fallback) => node?.GetValueKind() switch
    {
        null => fallback,
        JsonValueKind.True => true,
        JsonValueKind.False => false,
        _ => throw Error(field, $"must be true or false, got {node.ToJsonString()}"),
    };

    /// <summary>A string, else <paramref name="fallback"/> when absent.</summary>
    public string String(JsonNode? node, string field, string fallback)
    {
        if (node is null) return fallback;
        if (node is JsonValue v && v.GetValueKind() == JsonValueKind.String) return v.GetValue<string>();
        throw Error(field, $"must be a string, got {node.ToJsonString()}");
    }

    /// <summary>An array of integers, or null when absent.</summary>
    public int[]? OptionalIntArray(JsonNode? node, string field)
    {
        if (node is null) return null;
        if (node is not JsonArray arr)
            throw Error(field, $"must be an array of integers, got {node.ToJsonString()}");
        var result = new int[arr.Count];
        for (int i = 0; i < arr.Count; i++)
        {
            if (arr[i] is JsonValue v && v.GetValueKind() == JsonValueKind.Number && v.TryGetValue<int>(out var x))
                result[i] = x;
            else
                throw Error($"{field}[{i}]", $"must be an integer, got {arr[i]?.ToJsonString() ?? "null"}");
        }
        return result;
    }

    /// <summary>An array of numbers, or null when absent.</summary>
    public double[]? OptionalNumbers(JsonNode? node, string field)
    {
        if (node is null) return null;
        if (node is JsonArray arr && arr.All(n => n is JsonValue v && v.GetValueKind() == JsonValueKind.Number))
            return arr.Select(n => n!.GetValue<double>()).ToArray();
        throw Error(field, $"must be an array of numbers, got {node.ToJsonString()}");
    }
}
