using System.Net;
using System.Net.Http.Headers;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using GigaPath.IO;
using GigaPath.Models.Slide;
using GigaPath.Server.Scoring;
using GigaPath.Server.Slide;
using GigaPath.Weights;
using NUnit.Framework;

namespace GigaPath.Tests.Server;

/// <summary>/score/slide with the tiny slide encoder fixture: JSON and safetensors bodies, both poolings, all layers.</summary>
public class SlideScoringTests
{
    private static string SlideDir => FixturePaths.Get("slide_encoder_tiny");

    private static Task<ServerHarness> StartAsync(Func<GigaPath.Server.Hosting.ServerOptions, GigaPath.Server.Hosting.ServerOptions>? change = null) =>
        ServerHarness.StartAsync(ServerHarness.Options(o => (change ?? (x => x))(o with { SlideModelDir = SlideDir })),
            TileEncoderBackend.Load, SlideEncoderBackend.Load);

    private static TileFeatures Input() => TileFeatureFile.Read(FixturePaths.Get("slide_encoder_tiny", "input.safetensors"));

    private static string JsonBody(TileFeatures tiles, string pool, bool allLayers)
    {
        var rows = Enumerable.Range(0, tiles.Count).Select(i => tiles.Row(i).ToArray()).ToArray();
        var coords = Enumerable.Range(0, tiles.Count).Select(i => new[] { tiles.Coords![2 * i], tiles.Coords[2 * i + 1] }).ToArray();
        return JsonSerializer.Serialize(new { tile_embeddings = rows, coords, pool, all_layers = allLayers });
    }

    private static Task<HttpResponseMessage> PostAsync(ServerHarness h, HttpContent content, string path = "/score/slide") =>
        h.Client.PostAsync(path, content);

    private static float[] Flatten(JsonElement e) => e.ValueKind == JsonValueKind.Array
        ? e.EnumerateArray().SelectMany(Flatten).ToArray()
        : new[] { e.GetSingle() };

    private static double MaxDiff(float[] a, float[] b)
    {
        Assert.That(a, Has.Length.EqualTo(b.Length));
        return a.Zip(b).Max(p => Math.Abs((double)p.First - p.Second));
    }

    [TestCase("mean", "embed_global_pool", "layer_pool_")]
    [TestCase("cls", "embed_default", "layer_")]
    public async Task JsonRequestMatchesTheReference(string pool, string expectedEmbedding, string expectedLayerPrefix)
    {
        await using var h = await StartAsync();
        using var response = await PostAsync(h, new StringContent(JsonBody(Input(), pool, allLayers: true), Encoding.UTF8, "application/json"));
        var text = await response.Content.ReadAsStringAsync();
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), text);
        using var doc = JsonDocument.Parse(text);
        var root = doc.RootElement;
        using var expected = SafeTensorsFile.Open(FixturePaths.Get("slide_encoder_tiny", "expected.safetensors"));

        var slide = root.GetProperty("slide_embedding");
        Assert.That(slide.GetArrayLength(), Is.EqualTo(1), "[1, D] as embed-slide writes it");
        Parity.Check($"slide_encoder_tiny /score/slide pool {pool}: slide_embedding", MaxDiff(Flatten(slide), expected.ReadFloats(expectedEmbedding).Data));
        Parity.Check($"slide_encoder_tiny /score/slide pool {pool}: last_hidden_state",
            MaxDiff(Flatten(root.GetProperty("last_hidden_state")), expected.ReadFloats("last_hidden_state").Data));
        Assert.That(root.GetProperty("tile_embeddings_ctx").GetArrayLength(), Is.EqualTo(150));
        for (int i = 0; i <= 2; i++)
            Parity.Check($"slide_encoder_tiny /score/slide pool {pool}: layer_{i}",
                MaxDiff(Flatten(root.GetProperty($"layer_{i}")), expected.ReadFloats(expectedLayerPrefix + i).Data));
        Assert.That(root.TryGetProperty("layer_3", out _), Is.False, "depth 2: layers 0..2");
        Assert.That(root.GetProperty("warnings").ValueKind, Is.EqualTo(JsonValueKind.Array));
    }

    [Test]
    public async Task SafetensorsBodyGetsTheLibraryResultBitwise()
    {
        await using var h = await StartAsync();
        var bytes = File.ReadAllBytes(FixturePaths.Get("slide_encoder_tiny", "input.safetensors"));
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue("application/x-safetensors");
        using var response = await PostAsync(h, content, "/score/slide?pool=mean");
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), await response.Content.ReadAsStringAsync());
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/x-safetensors"));

        var dir = FixturePaths.TempDir();
        try
        {
            var path = Path.Combine(dir, "out.safetensors");
            File.WriteAllBytes(path, await response.Content.ReadAsByteArrayAsync());
            using var answer = SafeTensorsFile.Open(path);
            Assert.That(answer.Names, Is.EqualTo(new[] { "slide_embedding", "last_hidden_state", "tile_embeddings_ctx" }));
            Assert.That(answer.GetInfo("tile_embeddings_ctx").Shape, Is.EqualTo(new long[] { 150, 64 }));
            Assert.That(answer.Metadata["pool"], Is.EqualTo("mean"));

            var tiles = Input();
            using var encoder = SlideEncoder.Load(SlideDir);
            using var x = TorchSharp.torch.tensor(tiles.Features, [tiles.Count, tiles.Dim]);
            using var c = TorchSharp.torch.tensor(tiles.Coords!, [tiles.Count, 2]);
            using var library = encoder.Embed(x, c);
            foreach (var (name, tensor) in new[] { ("slide_embedding", library.MeanPooledEmbedding), ("last_hidden_state", library.LastHiddenState) })
            {
                var served = answer.ReadFloats(name).Data;
                var direct = tensor.data<float>().ToArray();
                Assert.That(MemoryMarshal.AsBytes(served.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(direct.AsSpan())), Is.True, name);
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Test]
    public async Task BadSlideRequestsAre4xx()
    {
        await using var h = await StartAsync();
        var tiles = Input();
        var narrow = tiles with { Features = tiles.Features.Take(tiles.Count * 16).ToArray(), Dim = 16 };
        var cases = new (HttpContent Content, int Status, string Message)[]
        {
            (new StringContent("{\"tile_embeddings\": [[1, 2]", Encoding.UTF8, "application/json"), 400, "not valid JSON"),
            (new StringContent("{\"coords\": [[0, 0]]}", Encoding.UTF8, "application/json"), 400, "\"tile_embeddings\" is missing"),
            (new StringContent(JsonBody(narrow, "mean", false), Encoding.UTF8, "application/json"), 400, "16 values each; this slide encoder takes 32"),
            (new StringContent(JsonBody(tiles, "max", false), Encoding.UTF8, "application/json"), 400, "pool 'max' is not supported"),
            (new StringContent("{\"tile_embeddings\": [[1, 2], [3]], \"coords\": [[0, 0], [1, 1]]}", Encoding.UTF8, "application/json"), 400, "[1] has 1 values"),
            (new StringContent("{\"tile_embeddings\": [[1, 2]], \"coords\": [[0, 0, 0]]}", Encoding.UTF8, "application/json"), 400, "[x, y] pairs"),
            (new StringContent("{\"tile_embeddings\": [[1, 2]], \"coords\": [[0, 0]], \"extra\": 1}", Encoding.UTF8, "application/json"), 400, "unknown field"),
            (new ByteArrayContent(Encoding.ASCII.GetBytes("garbage, not safetensors")) { Headers = { ContentType = new MediaTypeHeaderValue("application/octet-stream") } }, 400, "request body"),
        };
        foreach (var (content, status, message) in cases.Append((new StringContent(MismatchedCoords(tiles), Encoding.UTF8, "application/json"), 400, "has 150 tiles but \"coords\" has 20 rows")))
        {
            using var response = await PostAsync(h, content);
            var text = await response.Content.ReadAsStringAsync();
            Assert.That((int)response.StatusCode, Is.EqualTo(status), text);
            Assert.That(ServerHarness.ReadError(response, text).Error, Does.Contain(message), text);
        }
    }

    private static string MismatchedCoords(TileFeatures tiles)
    {
        var rows = Enumerable.Range(0, tiles.Count).Select(i => tiles.Row(i).ToArray()).ToArray();
        var coords = Enumerable.Range(0, 20).Select(i => new[] { 0.0, i * 256.0 }).ToArray();
        return JsonSerializer.Serialize(new { tile_embeddings = rows, coords });
    }

    [Test]
    public async Task SlidesWaitingBeyondCapacityGet503()
    {
        var slide = new GatedSlideBackend();
        var options = ServerHarness.Options(o => o with { SlideModelDir = SlideDir, SlideQueueCapacity = 1 });
        await using var h = await ServerHarness.StartAsync(options, _ => new FakeTileBackend(), _ => slide);
        slide.Gate.Reset();
        string body = "{\"tile_embeddings\": [[1, 2]], \"coords\": [[0, 0]]}";
        var running = PostAsync(h, new StringContent(body));
        Assert.That(await slide.Entered.WaitAsync(TimeSpan.FromSeconds(30)), Is.True);
        var waiting = PostAsync(h, new StringContent(body));
        for (int i = 0; i < 6000 && !h.Server.Metrics.Render().Contains("gigapath_slide_queue_depth 2\n"); i++)
            await Task.Delay(10);
        Assert.That(h.Server.Metrics.Render(), Does.Contain("gigapath_slide_queue_depth 2\n"), "one slide running, one waiting");

        using (var refused = await PostAsync(h, new StringContent(body)))
        {
            Assert.That(refused.StatusCode, Is.EqualTo(HttpStatusCode.ServiceUnavailable), "beyond one waiting slide");
            Assert.That(refused.Headers.RetryAfter?.Delta, Is.EqualTo(TimeSpan.FromSeconds(5)));
        }
        slide.Gate.Set();
        using (var r1 = await running) Assert.That(r1.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        using (var r2 = await waiting) Assert.That(r2.StatusCode, Is.EqualTo(HttpStatusCode.OK));
    }

    /// <summary>A slide backend that echoes the tile count and can hold the caller inside Encode.</summary>
    private sealed class GatedSlideBackend : ISlideEmbeddingBackend
    {
        public ManualResetEventSlim Gate { get; } = new(true);
        public SemaphoreSlim Entered { get; } = new(0);
        public int InputDim => 2;
        public string Description => "gated";

        public Task<SlideResult> EncodeAsync(TileFeatures tiles, SlidePooling pool, bool allLayers, double? level0TileSize, CancellationToken cancellationToken)
        {
            Entered.Release();
            Gate.Wait(TimeSpan.FromSeconds(30));
            return Task.FromResult(new SlideResult(new[] { new NamedTensor("slide_embedding", new float[] { tiles.Count }, new long[] { 1, 1 }) }, Array.Empty<string>()));
        }

        public void Dispose() { }
    }
}
