using System.Text.Json;
using GigaPath.Server.Hosting;
using GigaPath.Server.Metrics;
using GigaPath.Weights;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;
using TorchSharp;

namespace GigaPath.Server.Slide;

/// <summary>
/// <c>POST /score/slide</c>: tile embeddings and coordinates in, the slide encoder's named outputs out (the names
/// <c>embed-slide</c> writes). A JSON body is answered in JSON; a safetensors body
/// (<c>Content-Type: application/octet-stream</c> or <c>application/x-safetensors</c>, options in the query:
/// <c>?pool=cls&amp;all_layers=true</c>) is answered with a safetensors file, as is any request whose Accept header
/// asks for one of those types.
/// </summary>
internal static class SlideEndpoint
{
    private static readonly string[] BinaryTypes = { "application/octet-stream", "application/x-safetensors" };

    public static async Task HandleAsync(HttpContext ctx, ServerOptions options, ModelState models, ServerMetrics metrics)
    {
        var (backend, runner) = models.RequireSlide();
        bool binaryIn = IsBinary(ctx.Request.ContentType);
        bool binaryOut = binaryIn || WantsBinary(ctx.Request);
        var request = binaryIn
            ? await ReadSafeTensorsAsync(ctx, options)
            : SlideRequest.ParseJson((await RequestBody.ReadAsync(ctx, options.MaxSlideBodyBytes, "--max-slide-body-bytes")).Span);
        if (request.Dim != backend.InputDim)
            throw new ApiException(400, $"tile embeddings have {request.Dim} values each; this slide encoder takes {backend.InputDim}");

        var outputs = await runner.RunAsync(
            () => backend.Encode(request.TileEmbeddings, request.TileCount, request.Coords, request.Pool, request.AllLayers),
            ctx.RequestAborted);
        metrics.RecordSlide();
        if (binaryOut) await WriteSafeTensorsAsync(ctx, outputs);
        else await WriteJsonAsync(ctx, outputs);
    }

    private static bool IsBinary(string? contentType) =>
        contentType is not null && MediaTypeHeaderValue.TryParse(contentType, out var m) &&
        BinaryTypes.Any(t => m.MediaType.Equals(t, StringComparison.OrdinalIgnoreCase));

    private static bool WantsBinary(HttpRequest request) =>
        MediaTypeHeaderValue.TryParseList(request.Headers.Accept, out var accepts) &&
        accepts.Any(a => BinaryTypes.Any(t => a.MediaType.Equals(t, StringComparison.OrdinalIgnoreCase)));

    /// <summary>Streams the body to a temporary file and reads it with the library's validating safetensors reader.</summary>
    private static async Task<SlideRequest> ReadSafeTensorsAsync(HttpContext ctx, ServerOptions options)
    {
        var pool = SlideRequest.ParsePool(ctx.Request.Query["pool"].FirstOrDefault());
        bool allLayers = ctx.Request.Query["all_layers"].FirstOrDefault() is { } v
            ? bool.TryParse(v, out var b) ? b : throw new ApiException(400, $"all_layers must be true or false, got '{v}'")
            : false;
        var path = Path.Combine(Path.GetTempPath(), $"gigapath-slide-{Guid.NewGuid():N}.safetensors");
        try
        {
            await using (var fs = File.Create(path))
                await RequestBody.CopyToAsync(ctx, fs, options.MaxSlideBodyBytes, "--max-slide-body-bytes");
            using var file = OpenSafeTensors(path);
            return SlideRequest.FromSafeTensors(file, pool, allLayers);
        }
        finally
        {
            File.Delete(path);
        }
    }

    private static SafeTensorsFile OpenSafeTensors(string path)
    {
        try
        {
            return SafeTensorsFile.Open(path);
        }
        catch (WeightFormatException e)
        {
            throw new ApiException(400, "request body is not a valid safetensors file: " + e.Message.Replace(path, "body", StringComparison.Ordinal));
        }
    }

    private static async Task WriteSafeTensorsAsync(HttpContext ctx, IReadOnlyList<NamedTensor> outputs)
    {
        var path = Path.Combine(Path.GetTempPath(), $"gigapath-slide-out-{Guid.NewGuid():N}.safetensors");
        try
        {
            using (var scope = torch.NewDisposeScope())
            {
                var tensors = outputs.Select(o => KeyValuePair.Create(o.Name, torch.tensor(o.Data).reshape(o.Shape)));
                SafeTensorsWriter.Write(path, tensors);
            }
            ctx.Response.StatusCode = StatusCodes.Status200OK;
            ctx.Response.ContentType = "application/x-safetensors";
            await ctx.Response.SendFileAsync(path, ctx.RequestAborted);
        }
        finally
        {
            File.Delete(path);
        }
    }

    /// <summary>A JSON object with one nested array per output, shaped like the tensor.</summary>
    private static async Task WriteJsonAsync(HttpContext ctx, IReadOnlyList<NamedTensor> outputs)
    {
        ctx.Response.StatusCode = StatusCodes.Status200OK;
        ctx.Response.ContentType = "application/json";
        await using var w = new Utf8JsonWriter(ctx.Response.Body);
        w.WriteStartObject();
        foreach (var o in outputs)
        {
            if (!o.Data.All(float.IsFinite))
                throw new ApiException(500, $"output '{o.Name}' has non-finite values, which JSON cannot carry; send Accept: application/x-safetensors");
            w.WritePropertyName(o.Name);
            int offset = 0;
            WriteNested(w, o.Data, o.Shape, 0, ref offset);
            if (w.BytesPending > 1 << 16) await w.FlushAsync(ctx.RequestAborted);
        }
        w.WriteEndObject();
        await w.FlushAsync(ctx.RequestAborted);
    }

    private static void WriteNested(Utf8JsonWriter w, float[] data, long[] shape, int dim, ref int offset)
    {
        if (shape.Length == 0)
        {
            w.WriteNumberValue(data[offset++]);
            return;
        }
        w.WriteStartArray();
        for (long i = 0; i < shape[dim]; i++)
        {
            if (dim == shape.Length - 1) w.WriteNumberValue(data[offset++]);
            else WriteNested(w, data, shape, dim + 1, ref offset);
        }
        w.WriteEndArray();
    }
}
