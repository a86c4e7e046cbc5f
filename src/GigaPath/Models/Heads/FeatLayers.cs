using System.Globalization;

namespace GigaPath.Models.Heads;

/// <summary>
/// The reference's <c>feat_layer</c> string: "a-b-..." split on '-' into indices of the all-layer output list
/// (0 = the input embedding state, i = after encoder layer i). "5-11" therefore means layers 5 and 11, not a range;
/// the default "11" takes layer 11 of 12.
/// </summary>
internal static class FeatLayers
{
    public static int[] Parse(string text, int? depth = null)
    {
        if (string.IsNullOrWhiteSpace(text)) throw new GigaPathException("feat_layer: empty (expected e.g. '11' or '5-11')");
        var parts = text.Split('-');
        var result = new int[parts.Length];
        for (int i = 0; i < parts.Length; i++)
        {
            if (!int.TryParse(parts[i].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out result[i]))
                throw new GigaPathException($"feat_layer '{text}': '{parts[i]}' is not a layer index (expected non-negative integers joined by '-', e.g. '5-11')");
            if (depth is int d && result[i] > d)
                throw new GigaPathException($"feat_layer '{text}': layer {result[i]} does not exist (the slide encoder has {d} layers; valid indices 0..{d})");
        }
        return result;
    }
}
