using System.Runtime.InteropServices;
using System.Text.Json;
using GigaPath.IO;
using GigaPath.Server.Hosting;
using GigaPath.Server.Metrics;
using GigaPath.Weights;
using Microsoft.AspNetCore.Http;
using Microsoft.Net.Http.Headers;
using TorchSharp;
using GigaPath.Models.Slide;

namespace GigaPath.Server.Slide;

/// <summary>
/// <c>POST /score/slide</c>: tile embeddings and coordinates in, the slide encoder's outputs out, named as
/// <c>embed-slide</c> names them. A JSON body is answered in JSON. A tile-feature file body (safetensors with
/// <c>Content-Type: application/octet-stream</c> or <c>application/x-safetensors</c>, or a CLAM/TRIDENT HDF5 file
/// with <c>application/x-hdf5</c>; options in the query: <c>?pool=cls&amp;all_layers=true</c>) is answered with a
/// safetensors file, as is any request whose Accept header asks for <c>application/x-safetensors</c> or
/// <c>application/octet-stream</c>.
/// </summary>
internal static class SlideEndpoint
{
    private static readonly string[] SafeTensorsTypes = { "application/octet-stream", "application/x-safetensors" };
    private static readonly string[] Hdf5Types = { "application/x-hdf5", "application/x-hdf" };

    public static async Task HandleAsync(HttpContext ctx, ServerOptions options, ModelState models, ServerMetrics metrics, MemoryBudget budget)
    {
        var (backend, runner) = models.RequireSlide();
        // Held until the answer is written: the body while it is parsed, then the tile features.
        using var lease = budget.Open();
        var contentType = MediaTypeHeaderValue.TryParse(ctx.Request.ContentType, out var m) ? m.MediaType.Value : null;
        string? fileExtension = Is(contentType, SafeTensorsTypes) ? ".safetensors" : Is(contentType, Hdf5Types) ? ".h5" : null;
        bool binaryOut = fileExtension is not null || WantsBinary(ctx.Request);
        var request = fileExtension is not null
            ? await ReadFileBodyAsync(ctx, options, fileExtension, backend.InputDim, lease)
            : SlideRequest.ParseJson((await RequestBody.ReadAsync(ctx, options.MaxSlideBodyBytes, "--max-slide-body-bytes", lease)).Span,
                options.MaxSlideTiles, backend.InputDim, lease);
        if (request.Tiles.Dim != backend.InputDim)
            throw new ApiException(400, $"tile embeddings have {request.Tiles.Dim} values each; this slide encoder takes {backend.InputDim}");
        if (request.Tiles.Coords is null && request.Tiles.TilingCoords is null)
            throw new ApiException(400, "the tile-feature file has no 'coords'; the slide encoder needs each tile's (x, y)");

        var result = await runner.RunAsync(async () =>
        {
            try
            {
                return await backend.EncodeAsync(request.Tiles, request.Pool, request.AllLayers, request.Level0TileSize, ctx.RequestAborted);
            }
            catch (GigaPathException e)
            {
                throw new ApiException(422, ServerFlags.Describe(e.Message), inner: e);
            }
        }, ctx.RequestAborted);
        metrics.RecordSlide();
        if (binaryOut) await WriteSafeTensorsAsync(ctx, result, request.Pool, lease);
        else await WriteJsonAsync(ctx, result);
    }

    private static bool Is(string? mediaType, string[] types) =>
        mediaType is not null && types.Any(t => t.Equals(mediaType, StringComparison.OrdinalIgnoreCase));

    private static bool WantsBinary(HttpRequest request) =>
        MediaTypeHeaderValue.TryParseList(request.Headers.Accept, out var accepts) &&
        accepts.Any(a => Is(a.MediaType.Value, SafeTensorsTypes));

    /// <summary>
    /// Reads the body into memory (reserved as it is read) and parses it with the library's tile-feature reader, in
    /// memory, after reserving what reading it can take: at most --max-slide-tiles rows of the encoder's width, and no
    /// more than the file can hold (a safetensors file's values at most double when widened to float32; an HDF5 file's
    /// data is at most 1032 times its size, the reader's ratio limit).
    /// </summary>
    private static async Task<SlideRequest> ReadFileBodyAsync(HttpContext ctx, ServerOptions options, string extension, int inputDim, MemoryBudget.Lease lease)
    {
        var pool = SlideRequest.ParsePool(ctx.Request.Query["pool"].FirstOrDefault());
        bool allLayers = false;
        if (ctx.Request.Query["all_layers"].FirstOrDefault() is { } text && !bool.TryParse(text, out allLayers))
            throw new ApiException(400, $"all_layers must be true or false, got '{text}'");
        double? level0 = null;
        if (ctx.Request.Query["patch_size_level0"].FirstOrDefault() is { } p0Text)
        {
            if (!double.TryParse(p0Text, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var p0) || !(p0 > 0) || !double.IsFinite(p0))
                throw new ApiException(400, $"patch_size_level0 must be a positive number (the tile width in level-0 pixels), got '{p0Text}'");
            level0 = p0;
        }
        var body = await RequestBody.ReadAsync(ctx, options.MaxSlideBodyBytes, "--max-slide-body-bytes", lease);
        long mostValues = options.MaxSlideTiles * (inputDim * (long)sizeof(float) + 4 * sizeof(double));
        lease.Grow(Math.Min(mostValues, body.Length * (extension == ".h5" ? 1032L : 2)), "reading the tile-feature file");
        if (!MemoryMarshal.TryGetArray(body, out var bytes))
            throw new InvalidOperationException("the request body is not held in an array");
        try
        {
            using var stream = new MemoryStream(bytes.Array!, bytes.Offset, bytes.Count, writable: false);
            var tiles = TileFeatureFile.Read(stream, RequestBodyName, new TileFeatureBudget(options.MaxSlideTiles, inputDim));
            return new SlideRequest(tiles, pool, allLayers, level0);
        }
        catch (GigaPathException e)
        {
            // Over a budget: 413, like a body over --max-slide-body-bytes; otherwise the file is malformed.
            throw new ApiException(e is BudgetExceededException ? 413 : 400, ServerFlags.Describe(e.Message), inner: e);
        }
    }

    private const string RequestBodyName = "request body";

    /// <summary>The outputs as a safetensors file, serialised in memory (reserved in <paramref name="lease"/>) and sent.</summary>
    private static async Task WriteSafeTensorsAsync(HttpContext ctx, SlideResult result, SlidePooling pool, MemoryBudget.Lease lease)
    {
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["pool"] = SlidePoolingNames.ToName(pool) };
        if (result.Warnings.Count > 0) metadata["warnings"] = string.Join("\n", result.Warnings);
        if (result.Positions is not null) metadata["positions"] = result.Positions;
        long dataBytes = result.Outputs.Sum(o => (long)o.Data.Length * sizeof(float));
        // The file's data, and the tensors it is written from.
        lease.Grow(2 * dataBytes, "the safetensors answer");
        using var file = new MemoryStream(checked((int)Math.Min(Array.MaxLength, dataBytes + 4096)));
        using (var scope = torch.NewDisposeScope())
        {
            var tensors = result.Outputs.Select(o => KeyValuePair.Create(o.Name, torch.tensor(o.Data).reshape(o.Shape)));
            SafeTensorsWriter.WriteTo(file, tensors, metadata);
        }
        ctx.Response.StatusCode = StatusCodes.Status200OK;
        ctx.Response.ContentType = "application/x-safetensors";
        ctx.Response.ContentLength = file.Length;
        await ctx.Response.Body.WriteAsync(file.GetBuffer().AsMemory(0, (int)file.Length), ctx.RequestAborted);
    }

    /// <summary>A JSON object with one nested array per output, shaped like the tensor, and the warnings.</summary>
    private static async Task WriteJsonAsync(HttpContext ctx, SlideResult result)
    {
        foreach (var o in result.Outputs)
        {
            if (!o.Data.All(float.IsFinite))
                throw new ApiException(500, $"output '{o.Name}' has non-finite values, which JSON cannot carry; send Accept: application/x-safetensors");
        }
        ctx.Response.StatusCode = StatusCodes.Status200OK;
        ctx.Response.ContentType = "application/json";
        await using var w = new Utf8JsonWriter(ctx.Response.Body);
        w.WriteStartObject();
        foreach (var o in result.Outputs)
        {
            w.WritePropertyName(o.Name);
            await JsonTensors.WriteAsync(w, o.Data, o.Shape, ctx.RequestAborted);
        }
        if (result.Positions is not null) w.WriteString("positions", result.Positions);
        w.WriteStartArray("warnings");
        foreach (var warning in result.Warnings) w.WriteStringValue(warning);
        w.WriteEndArray();
        w.WriteEndObject();
        await w.FlushAsync(ctx.RequestAborted);
    }
}
