using System.Text.Json;
using Microsoft.AspNetCore.Http;

namespace GigaPath.Server;

/// <summary>
/// A request the server refuses, with the HTTP status and the message the client sees as
/// <c>{"error": "...", "row": i}</c>. <see cref="Row"/> is the 0-based position in <c>input_data.data</c> of the
/// offending row, when one row is to blame. The message the client sees has no file system paths
/// (<see cref="Hosting.ResponseText"/>).
/// </summary>
public sealed class ApiException : Exception
{
    public int StatusCode { get; }
    public int? Row { get; }

    /// <summary>Seconds for a <c>Retry-After</c> header (503: queue full, model loading).</summary>
    public int? RetryAfterSeconds { get; init; }

    public ApiException(int statusCode, string message, int? row = null, Exception? inner = null) : base(message, inner)
    {
        StatusCode = statusCode;
        Row = row;
    }

    internal static async Task WriteAsync(HttpContext ctx, int status, string message, int? row = null, int? retryAfter = null)
    {
        if (ctx.Response.HasStarted) return;
        ctx.Response.StatusCode = status;
        ctx.Response.ContentType = "application/json";
        if (retryAfter is { } s) ctx.Response.Headers.RetryAfter = s.ToString(System.Globalization.CultureInfo.InvariantCulture);
        if (status == StatusCodes.Status401Unauthorized) ctx.Response.Headers.WWWAuthenticate = "Bearer";
        await using var w = new Utf8JsonWriter(ctx.Response.Body);
        w.WriteStartObject();
        w.WriteString("error", Hosting.ResponseText.WithoutPaths(message));
        if (row is { } r) w.WriteNumber("row", r);
        w.WriteEndObject();
        await w.FlushAsync(ctx.RequestAborted);
    }

    internal Task WriteAsync(HttpContext ctx) => WriteAsync(ctx, StatusCode, Message, Row, RetryAfterSeconds);
}
