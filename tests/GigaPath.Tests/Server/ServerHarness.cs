using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using GigaPath.Server.Hosting;
using GigaPath.Server.Scoring;
using GigaPath.Server.Slide;

namespace GigaPath.Tests.Server;

/// <summary>A scoring server on 127.0.0.1 with a free port, and a client for it; disposing stops both.</summary>
internal sealed class ServerHarness : IAsyncDisposable
{
    public ScoringServer Server { get; }
    public HttpClient Client { get; }

    private ServerHarness(ScoringServer server, HttpClient client)
    {
        Server = server;
        Client = client;
    }

    public static ServerOptions Options(Func<ServerOptions, ServerOptions>? change = null)
    {
        var o = new ServerOptions
        {
            ModelDir = FixturePaths.Get("tile_encoder_tiny"),
            Urls = new[] { "http://127.0.0.1:0" },
            ShutdownTimeoutSeconds = 10,
        };
        return change is null ? o : change(o);
    }

    /// <summary>Starts a server; waits for the model unless <paramref name="waitReady"/> is false.</summary>
    public static async Task<ServerHarness> StartAsync(ServerOptions options, Func<ServerOptions, ITileEmbeddingBackend> tile,
        Func<ServerOptions, ISlideEmbeddingBackend>? slide = null, bool waitReady = true)
    {
        var server = new ScoringServer(options, tile, slide, logging: _ => { });
        await server.StartAsync();
        var client = new HttpClient { BaseAddress = new Uri(server.Addresses.Single()), Timeout = TimeSpan.FromSeconds(60) };
        var harness = new ServerHarness(server, client);
        if (waitReady)
        {
            try
            {
                await server.WaitUntilReadyAsync().WaitAsync(TimeSpan.FromSeconds(60));
            }
            catch
            {
                await harness.DisposeAsync();
                throw;
            }
        }
        return harness;
    }

    public static string ScoreBody(IEnumerable<byte[]> images)
    {
        var rows = images.Select(i => new[] { Convert.ToBase64String(i) }).ToArray();
        return JsonSerializer.Serialize(new
        {
            input_data = new { columns = new[] { "image" }, index = Enumerable.Range(0, rows.Length).ToArray(), data = rows },
        });
    }

    public Task<HttpResponseMessage> PostScoreAsync(string body, string? key = null, string path = "/score")
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (key is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", key);
        return Client.SendAsync(request);
    }

    /// <summary>Posts images asking for their CLS embeddings (<c>?features=cls</c>) and decodes the torch.save answers with our reader.</summary>
    public async Task<float[][]> ScoreAsync(IEnumerable<byte[]> images, string? key = null)
    {
        using var response = await PostScoreAsync(ScoreBody(images), key, "/score?features=cls");
        var text = await response.Content.ReadAsStringAsync();
        if (response.StatusCode != HttpStatusCode.OK)
            throw new InvalidOperationException($"/score answered {(int)response.StatusCode}: {text}");
        return DecodeTorchFeatures(text);
    }

    public static float[][] DecodeTorchFeatures(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.EnumerateArray().Select(r =>
        {
            var (data, shape) = GigaPath.Weights.TorchSaveReader.ReadFloats(Convert.FromBase64String(r.GetProperty("image_features").GetString()!));
            if (shape.Length != 1 || shape[0] != data.Length) throw new InvalidOperationException($"tensor shape [{string.Join(", ", shape)}] is not [D]");
            return data;
        }).ToArray();
    }

    /// <summary>Each record's torch.save tensor with its shape, whatever the shape.</summary>
    public static (float[] Data, long[] Shape)[] DecodeTorchTensors(string json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.EnumerateArray()
            .Select(r => GigaPath.Weights.TorchSaveReader.ReadFloats(Convert.FromBase64String(r.GetProperty("image_features").GetString()!)))
            .ToArray();
    }

    public static (int Status, string? Error, int? Row) ReadError(HttpResponseMessage response, string body)
    {
        using var doc = JsonDocument.Parse(body);
        var root = doc.RootElement;
        return ((int)response.StatusCode,
            root.TryGetProperty("error", out var e) ? e.GetString() : null,
            root.TryGetProperty("row", out var r) ? r.GetInt32() : null);
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await Server.DisposeAsync();
    }
}
