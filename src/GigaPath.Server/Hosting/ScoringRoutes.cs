using System.Diagnostics;
using System.Text.Json;
using GigaPath.Server.Metrics;
using GigaPath.Server.Scoring;
using GigaPath.Server.Slide;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace GigaPath.Server.Hosting;

/// <summary>
/// The HTTP surface. Scoring endpoints (<c>/score</c>, <c>/score/slide</c>) and <c>/metrics</c> (which tells
/// anyone the load and the traffic) need the API key when one is set, <c>/metrics</c> not from loopback clients
/// with <see cref="ServerOptions.MetricsOpenOnLoopback"/>; the probes (<c>/</c>, <c>/health</c>, <c>/ready</c>)
/// never do, as orchestrators call them without credentials. Every refusal is JSON <c>{"error": ..., "row": ...}</c>.
/// </summary>
internal static class ScoringRoutes
{
    public static void Map(WebApplication app, ServerOptions options, ModelState models, ServerMetrics metrics, MemoryBudget budget, ILogger logger)
    {
        var key = options.ApiKey is null ? null : new BearerKey(options.ApiKey);
        var memory = new IdleMemoryRelease();

        app.Use(async (ctx, next) =>
        {
            long start = Stopwatch.GetTimestamp();
            var endpoint = EndpointLabel(ctx.Request.Path);
            memory.Enter();
            try
            {
                await next(ctx);
            }
            finally
            {
                memory.Exit(scoring: endpoint is "score" or "score_slide");
                int status = ctx.Response.StatusCode;
                bool timed = endpoint is "score" or "score_slide" && status == StatusCodes.Status200OK;
                metrics.RecordRequest(endpoint, status, timed ? Stopwatch.GetElapsedTime(start).TotalSeconds : null);
            }
        });

        app.Use(async (ctx, next) =>
        {
            try
            {
                if (!models.Listening)
                {
                    await ApiException.WriteAsync(ctx, StatusCodes.Status503ServiceUnavailable, "the server is starting", retryAfter: 1);
                    return;
                }
                if (key is not null && NeedsKey(ctx, options) && !key.Accepts(ctx.Request))
                {
                    await ApiException.WriteAsync(ctx, StatusCodes.Status401Unauthorized, "missing or invalid API key (send Authorization: Bearer <key>)");
                    return;
                }
                await next(ctx);
            }
            catch (ApiException e)
            {
                if (e.StatusCode >= 500) logger.LogWarning("{Path}: {Status} {Message}", ctx.Request.Path, e.StatusCode, e.Message);
                await e.WriteAsync(ctx);
            }
            catch (BadHttpRequestException e)
            {
                await ApiException.WriteAsync(ctx, e.StatusCode, e.Message);
            }
            catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
            {
                // The client went away; nobody is left to answer.
                ctx.Response.StatusCode = 499;
            }
            catch (Exception e)
            {
                logger.LogError(e, "{Path}: unexpected error", ctx.Request.Path);
                await ApiException.WriteAsync(ctx, StatusCodes.Status500InternalServerError, $"internal error: {e.Message}");
            }
        });

        app.MapPost("/score", ctx => ScoreEndpoint.HandleAsync(ctx, options, models, metrics, budget));
        app.MapPost("/score/slide", ctx => SlideEndpoint.HandleAsync(ctx, options, models, metrics, budget));

        // Azure ML's inference server answers its liveness probe on "/".
        app.MapGet("/", () => Results.Text("Healthy"));
        app.MapGet("/health", () => Results.Json(new { status = "ok" }));
        app.MapGet("/ready", () => Ready(models));
        app.MapGet("/metrics", () => Results.Text(metrics.Render(), "text/plain; version=0.0.4; charset=utf-8"));
    }

    private static bool NeedsKey(HttpContext ctx, ServerOptions options)
    {
        if (ctx.Request.Path.StartsWithSegments("/score")) return true;
        if (!ctx.Request.Path.StartsWithSegments("/metrics")) return false;
        return !(options.MetricsOpenOnLoopback && ctx.Connection.RemoteIpAddress is { } ip && System.Net.IPAddress.IsLoopback(ip));
    }

    /// <summary>The readiness probe: open to anyone, so what it says of the models carries no file system paths.</summary>
    private static IResult Ready(ModelState models)
    {
        var body = new Dictionary<string, object?>
        {
            ["ready"] = models.IsReady,
            ["state"] = models.Failure is not null ? "failed" : models.IsReady ? "ready" : "loading",
        };
        if (models.Tile is { } tile)
        {
            body["tile_model"] = ResponseText.WithoutPaths(tile.Backend.Description);
            body["dim"] = tile.Backend.Dim;
        }
        if (models.Slide is { } slide) body["slide_model"] = ResponseText.WithoutPaths(slide.Backend.Description);
        if (models.Failure is { } e) body["error"] = ResponseText.WithoutPaths(e.Message);
        return Results.Json(body, statusCode: models.IsReady ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable);
    }

    /// <summary>A bounded set of metric labels: unknown paths share one, so scanners cannot grow the metrics.</summary>
    private static string EndpointLabel(PathString path) => path.Value switch
    {
        "/score" => "score",
        "/score/slide" => "score_slide",
        "/health" => "health",
        "/ready" => "ready",
        "/metrics" => "metrics",
        "/" => "root",
        _ => "other",
    };
}
