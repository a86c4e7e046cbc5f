using Microsoft.AspNetCore.Http;

namespace GigaPath.Server.Hosting;

/// <summary>Reads a request body, refusing (413) anything over a limit before reading (Content-Length) and while reading.</summary>
internal static class RequestBody
{
    /// <summary>
    /// The whole body in memory, reserved in <paramref name="lease"/> before it is read: its Content-Length, or
    /// <paramref name="limit"/> when the client sends none (the limit is validated to fit one array at start).
    /// </summary>
    public static async Task<ReadOnlyMemory<byte>> ReadAsync(HttpContext ctx, long limit, string option, MemoryBudget.Lease lease)
    {
        var declared = ctx.Request.ContentLength;
        if (declared > limit)
            throw TooLarge(limit, option);
        long size = Math.Min(declared ?? limit, Math.Min(limit, Array.MaxLength));
        lease.Grow(size, "the request body");
        var buffer = new MemoryStream(declared is > 0 ? (int)size : 16 * 1024);
        await CopyToAsync(ctx, buffer, limit, option);
        return buffer.GetBuffer().AsMemory(0, (int)buffer.Length);
    }

    /// <summary>Copies the body into <paramref name="destination"/>.</summary>
    public static async Task CopyToAsync(HttpContext ctx, Stream destination, long limit, string option)
    {
        if (ctx.Request.ContentLength > limit)
            throw TooLarge(limit, option);
        var chunk = new byte[64 * 1024];
        long total = 0;
        try
        {
            while (true)
            {
                int n = await ctx.Request.Body.ReadAsync(chunk, ctx.RequestAborted);
                if (n == 0) break;
                total += n;
                if (total > limit)
                    throw TooLarge(limit, option);
                await destination.WriteAsync(chunk.AsMemory(0, n), ctx.RequestAborted);
            }
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge)
        {
            throw TooLarge(limit, option, e);
        }
    }

    private static ApiException TooLarge(long limit, string option, Exception? inner = null) =>
        new(413, $"request body is larger than {limit} bytes (the server's {option} limit)", inner: inner);
}
