using System.Text.Json;

namespace GigaPath.Training;

/// <summary>
/// Reads a task file for <c>gigapath finetune --config</c>. Two forms: a JSON object (file starting with '{'), or a
/// small YAML subset: one <c>key: value</c> per line, '#' comments, blank lines, values optionally quoted, lists inline
/// as <c>[a, b, c]</c>. Nesting, multi-line values and anchors are rejected rather than misread.
/// </summary>
internal static class TaskConfigFile
{
    public static List<(string Key, string Value, string Where)> Read(string path)
    {
        if (!File.Exists(path)) throw new GigaPathException($"{path}: config file not found");
        var text = File.ReadAllText(path);
        return text.TrimStart().StartsWith('{') ? ReadJson(path, text) : ReadYaml(path, text);
    }

    private static List<(string, string, string)> ReadJson(string path, string text)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(text); }
        catch (JsonException e) { throw new GigaPathException($"{path}: invalid JSON ({e.Message})", e); }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new GigaPathException($"{path}: the JSON must be an object of options");
            var result = new List<(string, string, string)>();
            foreach (var p in doc.RootElement.EnumerateObject())
            {
                string value = p.Value.ValueKind switch
                {
                    JsonValueKind.String => p.Value.GetString()!,
                    JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => p.Value.GetRawText(),
                    JsonValueKind.Array => string.Join(",", p.Value.EnumerateArray().Select(e => e.ValueKind == JsonValueKind.String ? e.GetString() : e.GetRawText())),
                    _ => throw new GigaPathException($"{path}: option '{p.Name}' must be a string, number, boolean or list"),
                };
                result.Add((p.Name, value, $"{path}: {p.Name}"));
            }
            return result;
        }
    }

    private static List<(string, string, string)> ReadYaml(string path, string text)
    {
        var result = new List<(string, string, string)>();
        var lines = text.Split('\n');
        for (int i = 0; i < lines.Length; i++)
        {
            string where = $"{path}:{i + 1}";
            var line = StripComment(lines[i]).TrimEnd('\r').TrimEnd();
            if (line.Trim().Length == 0 || line.Trim() == "---") continue;
            if (char.IsWhiteSpace(line[0]) || line.TrimStart().StartsWith('-'))
                throw new GigaPathException($"{where}: nested or list-item lines are not supported; write 'key: value' with inline lists like [a, b]");
            int colon = line.IndexOf(':');
            if (colon <= 0) throw new GigaPathException($"{where}: expected 'key: value', got '{line.Trim()}'");
            var key = line[..colon].Trim();
            var value = line[(colon + 1)..].Trim();
            if (value.Length == 0) throw new GigaPathException($"{where}: option '{key}' has no value (nested maps are not supported)");
            if (value.Length >= 2 && (value[0] == '"' && value[^1] == '"' || value[0] == '\'' && value[^1] == '\''))
                value = value[1..^1];
            result.Add((key, value, where));
        }
        return result;
    }

    /// <summary>Drops a '#' comment that is not inside quotes.</summary>
    private static string StripComment(string line)
    {
        char quote = '\0';
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (quote != '\0') { if (c == quote) quote = '\0'; continue; }
            if (c is '"' or '\'') quote = c;
            else if (c == '#' && (i == 0 || char.IsWhiteSpace(line[i - 1]))) return line[..i];
        }
        return line;
    }
}
