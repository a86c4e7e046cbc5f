using System.Diagnostics;
using GigaPath.Server.Hosting;
using GigaPath.Server.Metrics;
using Microsoft.AspNetCore.Http;

namespace GigaPath.Server.Scoring;

/// <summary><c>POST /score</c>: decode and preprocess every row on the request thread, embed them through the shared batching queue.</summary>
internal static class ScoreEndpoint
{
    public static async Task HandleAsync(HttpContext ctx, ServerOptions options, ModelState models, ServerMetrics metrics)
    {
        var (backend, queue) = models.RequireTile();
        var format = FeatureFormats.Negotiate(ctx.Request);
        var output = FeatureFormats.NegotiateOutput(ctx.Request);
        var body = await RequestBody.ReadAsync(ctx, options.MaxBodyBytes, "--max-body-bytes");
        var images = ScoreRequest.Parse(body, options.MaxImagesPerRequest);

        // Refuse before decoding when the queue cannot take the request anyway: decoding is the costly part of a
        // request the server is about to turn away.
        if (queue.Depth + images.Count > queue.Capacity)
            throw QueueFull(queue.Depth, queue.Capacity);

        long start = Stopwatch.GetTimestamp();
        var pixels = new float[images.Count][];
        for (int row = 0; row < images.Count; row++)
        {
            var bytes = ScoreRequest.DecodeBase64(images[row], row);
            try
            {
                pixels[row] = backend.Preprocess(bytes, row, options.MaxImagePixels);
            }
            catch (GigaPathException e)
            {
                throw new ApiException(422, $"row {row}: {e.Message}", row, e);
            }
        }

        metrics.RecordPreprocess(Stopwatch.GetElapsedTime(start));

        if (!queue.TryEnqueue(pixels, output, ctx.RequestAborted, out var pending))
            throw QueueFull(queue.Depth, queue.Capacity);
        var embeddings = await pending;
        long[] shape = output == TileOutput.Cls ? [backend.Dim] : [1, backend.TokenDim, backend.GridSize, backend.GridSize];
        await ScoreResponse.WriteAsync(ctx.Response, embeddings, shape, format, ctx.RequestAborted);
    }

    private static ApiException QueueFull(int depth, int capacity) =>
        new(503, $"server is busy: {depth} of {capacity} queued images; retry later") { RetryAfterSeconds = 1 };
}
