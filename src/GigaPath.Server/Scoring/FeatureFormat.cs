using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;

namespace GigaPath.Server.Scoring;

/// <summary>
/// How <c>image_features</c> is encoded in the <c>/score</c> answer. <see cref="Torch"/> (the default, as Azure ML
/// answers): base64 of a <c>torch.save</c> file holding a float32 tensor ([1, D, g, g] or [D], see
/// <see cref="TileOutput"/>). <see cref="Floats"/>: the same tensor as nested JSON arrays (shortest round-trip text,
/// so parsing them back as float32 gives the same bits), for clients without PyTorch.
/// </summary>
internal enum FeatureFormat
{
    Torch,
    Floats,
}

internal static class FeatureFormats
{
    /// <summary>
    /// <c>?format=json</c> (or <c>floats</c>) or an Accept media type with a <c>format=floats</c>/<c>format=json</c>
    /// parameter (e.g. <c>Accept: application/json; format=floats</c>) selects floats; <c>?format=torch</c> or nothing
    /// selects torch. The query wins over the header.
    /// </summary>
    public static FeatureFormat Negotiate(HttpRequest request)
    {
        if (request.Query.TryGetValue("format", out var values) && values.Count > 0)
        {
            return Parse(values[0]) ?? throw new ApiException(400, $"format: unknown value '{values[0]}'; use 'torch' (default) or 'json'");
        }
        if (MediaTypeHeaderValue.TryParseList(request.Headers.Accept, out var accepts))
        {
            foreach (var accept in accepts)
            {
                var parameter = accept.Parameters.FirstOrDefault(p => p.Name.Equals("format", StringComparison.OrdinalIgnoreCase));
                if (parameter is not null && Parse(parameter.Value.Value?.Trim('"')) is { } chosen)
                    return chosen;
            }
        }
        return FeatureFormat.Torch;
    }

    /// <summary><c>?features=map</c> (or nothing) selects the patch-token map, <c>?features=cls</c> the CLS embedding.</summary>
    public static TileOutput NegotiateOutput(HttpRequest request)
    {
        if (!request.Query.TryGetValue("features", out var values) || values.Count == 0)
            return TileOutput.PatchMap;
        return values[0]?.ToLowerInvariant() switch
        {
            "map" or "patch" or "patch_tokens" => TileOutput.PatchMap,
            "cls" => TileOutput.Cls,
            _ => throw new ApiException(400, $"features: unknown value '{values[0]}'; use 'map' (default: the [1, D, H/p, W/p] patch-token map) or 'cls' (the [D] tile embedding)"),
        };
    }

    private static FeatureFormat? Parse(string? value) => value?.ToLowerInvariant() switch
    {
        "torch" or "pt" or "pytorch" => FeatureFormat.Torch,
        "json" or "floats" => FeatureFormat.Floats,
        _ => null,
    };
}
