using System.Diagnostics;
using GigaPath.Server.Hosting;
using GigaPath.Server.Metrics;
using GigaPath.Imaging;
using Microsoft.AspNetCore.Http;

namespace GigaPath.Server.Scoring;

/// <summary>
/// <c>POST /score</c>: decode and preprocess every row on the request thread, embed them through the shared batching
/// queue. The request draws on the server's <see cref="MemoryBudget"/> before each allocation it makes: its body (from
/// Content-Length, before reading it), each image's decode (from the image's header, before decoding) and its tiles
/// and answers while they wait for the batch.
/// </summary>
internal static class ScoreEndpoint
{
    public static async Task HandleAsync(HttpContext ctx, ServerOptions options, ModelState models, ServerMetrics metrics, MemoryBudget budget)
    {
        var (backend, queue) = models.RequireTile();
        var format = FeatureFormats.Negotiate(ctx.Request);
        var output = FeatureFormats.NegotiateOutput(ctx.Request);
        using var lease = budget.Open();
        var body = await RequestBody.ReadAsync(ctx, options.MaxBodyBytes, "--max-body-bytes", lease);
        var pixels = Decode(body, options, backend, queue, budget, lease, metrics, ctx.RequestAborted);
        // The body is garbage from here on; the tiles and their answers wait for the batch.
        lease.Shrink(lease.Bytes);
        long answerBytes = backend.Dim * (output == TileOutput.Cls ? 1L : (long)backend.GridSize * backend.GridSize) * sizeof(float);
        // The embedding, its torch.save bytes and their base64 text (UTF-16 while written).
        lease.Grow(pixels.Sum(p => (long)p.Length * sizeof(float)) + pixels.Length * answerBytes * 4, $"{pixels.Length} tiles and their answers");

        // Errors name a tile by request and row: a batch holds the tiles of several requests.
        var names = Enumerable.Range(0, pixels.Length).Select(row => $"request {ctx.TraceIdentifier} row {row}").ToList();
        if (!queue.TryEnqueue(pixels, names, output, ctx.RequestAborted, out var pending))
            throw QueueFull(queue.Depth, queue.Capacity);
        var embeddings = await pending;
        long[] shape = output == TileOutput.Cls ? [backend.Dim] : [1, backend.TokenDim, backend.GridSize, backend.GridSize];
        await ScoreResponse.WriteAsync(ctx.Response, embeddings, shape, format, ctx.RequestAborted);
    }

    private static float[][] Decode(ReadOnlyMemory<byte> body, ServerOptions options, ITileEmbeddingBackend backend, Batching.EmbeddingQueue queue,
        MemoryBudget budget, MemoryBudget.Lease lease, ServerMetrics metrics, CancellationToken cancellationToken)
    {
        using var rows = ScoreRequest.Parse(body, options.MaxImagesPerRequest);

        // Refuse before decoding when the queue cannot take the request anyway: decoding is the costly part of a
        // request the server is about to turn away.
        if (queue.Depth + rows.Count > queue.Capacity)
            throw QueueFull(queue.Depth, queue.Capacity);

        long start = Stopwatch.GetTimestamp();
        var pixels = new float[rows.Count][];
        for (int row = 0; row < rows.Count; row++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var decoding = budget.Open();
            decoding.Grow(rows.DecodingBytes(row), $"row {row}: its base64 text");
            var bytes = rows.Decode(row);
            int r = row;
            try
            {
                pixels[row] = backend.Preprocess(bytes, row, options.MaxImagePixels,
                    (w, h) => decoding.Grow(ImageDecoder.DecodingBytes(w, h), $"row {r}: decoding its {w}x{h} image"));
            }
            catch (GigaPathException e)
            {
                throw new ApiException(422, $"row {row}: {e.Message}", row, e);
            }
        }
        metrics.RecordPreprocess(Stopwatch.GetElapsedTime(start));
        return pixels;
    }

    private static ApiException QueueFull(int depth, int capacity) =>
        new(503, $"server is busy: {depth} of {capacity} queued images; retry later") { RetryAfterSeconds = 1 };
}
