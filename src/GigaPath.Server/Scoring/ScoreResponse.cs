using System.Text.Json;
using GigaPath.Server.Hosting;
using GigaPath.Weights;
using Microsoft.AspNetCore.Http;

namespace GigaPath.Server.Scoring;

/// <summary>
/// Writes the <c>/score</c> answer: <c>[{"image_features": ...}, ...]</c>, one record per input row, in order, each a
/// float32 tensor of <c>shape</c> (base64 <c>torch.save</c>, or nested JSON arrays of that shape).
/// </summary>
internal static class ScoreResponse
{
    public const string FeaturesField = "image_features";

    public static async Task WriteAsync(HttpResponse response, IReadOnlyList<float[]> embeddings, long[] shape, FeatureFormat format, CancellationToken cancel)
    {
        response.StatusCode = StatusCodes.Status200OK;
        response.ContentType = "application/json";
        await using var w = new Utf8JsonWriter(response.Body);
        w.WriteStartArray();
        for (int row = 0; row < embeddings.Count; row++)
        {
            var e = embeddings[row];
            w.WriteStartObject();
            if (format == FeatureFormat.Torch)
            {
                w.WriteBase64String(FeaturesField, TorchSaveWriter.Serialize(e, shape));
            }
            else
            {
                // JSON has no NaN or infinity; the torch format carries them.
                if (!e.All(float.IsFinite))
                    throw new ApiException(500, $"row {row}: the embedding has non-finite values, which JSON cannot carry; ask for format=torch", row);
                w.WritePropertyName(FeaturesField);
                await JsonTensors.WriteAsync(w, e, shape, cancel);
            }
            w.WriteEndObject();
            if (w.BytesPending > 1 << 16) await w.FlushAsync(cancel);
        }
        w.WriteEndArray();
        await w.FlushAsync(cancel);
    }
}
