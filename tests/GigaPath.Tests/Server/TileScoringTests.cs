using System.Buffers.Binary;
using System.IO.Compression;
using System.Net;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using GigaPath.Imaging;
using GigaPath.Models.Tile;
using GigaPath.Server.Scoring;
using GigaPath.Weights;
using NUnit.Framework;

namespace GigaPath.Tests.Server;

/// <summary>/score with the real tiny tile encoder and the two real tiles of the preprocessing fixture.</summary>
public class TileScoringTests
{
    private static readonly string[] TileFiles = { "prov_normal_000_1.png", "01581x_25327y.png" };

    private static byte[][] Tiles() => TileFiles.Select(f => File.ReadAllBytes(FixturePaths.Get("preprocess", f))).ToArray();

    private static Task<ServerHarness> StartTinyAsync(Func<GigaPath.Server.Hosting.ServerOptions, GigaPath.Server.Hosting.ServerOptions>? change = null) =>
        ServerHarness.StartAsync(ServerHarness.Options(change), TileEncoderBackend.Load);

    /// <summary>The library path embed-tiles takes: decode, preprocess, one batch through the encoder.</summary>
    private static float[][] LibraryEmbeddings()
    {
        using var encoder = TileEncoder.Load(FixturePaths.Get("tile_encoder_tiny"));
        var pixels = TileFiles.Select(f => TilePreprocessor.Default.PreprocessFile(FixturePaths.Get("preprocess", f))).ToList();
        using var batch = TilePreprocessor.Default.ToBatch(pixels);
        using var result = encoder.Embed(batch);
        var flat = result.Embeddings.data<float>().ToArray();
        int dim = (int)result.Embeddings.shape[1];
        return Enumerable.Range(0, pixels.Count).Select(i => flat.AsSpan(i * dim, dim).ToArray()).ToArray();
    }

    /// <summary>Runs <c>gigapath embed-tiles</c> in-process on the two tiles and reads its <c>embeddings</c> [2, D].</summary>
    private static float[][] EmbedTilesCli()
    {
        var dir = FixturePaths.TempDir();
        try
        {
            var output = Path.Combine(dir, "tiles.safetensors");
            var args = new[] { "embed-tiles", "--model", FixturePaths.Get("tile_encoder_tiny"), "--out", output }
                .Concat(TileFiles.Select(f => FixturePaths.Get("preprocess", f))).ToArray();
            Assert.That(GigaPath.Cli.Program.Main(args), Is.Zero, "embed-tiles");
            using var file = SafeTensorsFile.Open(output);
            var (data, shape) = file.ReadFloats("embeddings");
            Assert.That(shape, Is.EqualTo(new long[] { 2, 48 }));
            return Enumerable.Range(0, 2).Select(i => data.AsSpan(i * 48, 48).ToArray()).ToArray();
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    private static bool Bitwise(float[] a, float[] b) => MemoryMarshal.AsBytes(a.AsSpan()).SequenceEqual(MemoryMarshal.AsBytes(b.AsSpan()));

    [Test]
    public async Task TheAzureRequestReturnsEmbedTilesEmbeddingsBitwiseAndMatchesTheFixture()
    {
        var tiles = Tiles();
        var body = "{\"input_data\": {\"columns\": [\"image\"], \"index\": [0, 1], \"data\": [[\"" +
                   Convert.ToBase64String(tiles[0]) + "\"], [\"" + Convert.ToBase64String(tiles[1]) + "\"]]}}";
        await using var h = await StartTinyAsync();
        using var response = await h.PostScoreAsync(body, path: "/score?features=cls");
        var text = await response.Content.ReadAsStringAsync();
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), text);
        Assert.That(response.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/json"));
        var features = ServerHarness.DecodeTorchFeatures(text);

        var library = LibraryEmbeddings();
        var cli = EmbedTilesCli();
        Assert.That(features, Has.Length.EqualTo(2));
        for (int i = 0; i < 2; i++)
        {
            Assert.That(features[i], Has.Length.EqualTo(48));
            Assert.That(Bitwise(features[i], cli[i]), Is.True, $"row {i} equals embed-tiles' embedding bit for bit");
            Assert.That(Bitwise(features[i], library[i]), Is.True, $"row {i} equals the library's embedding bit for bit");
        }

        using var expected = SafeTensorsFile.Open(FixturePaths.Get("preprocess", "expected.safetensors"));
        var (reference, shape) = expected.ReadFloats("embedding");
        Assert.That(shape, Is.EqualTo(new long[] { 2, 48 }));
        double maxDiff = 0;
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 48; j++)
                maxDiff = Math.Max(maxDiff, Math.Abs(features[i][j] - reference[i * 48 + j]));
        Parity.Check("preprocess (2 PNG tiles) /score embedding", maxDiff);
    }

    /// <summary>
    /// Real PyTorch decodes every answer the way Microsoft's sample client does (healthcareai_toolkit GigaPathClient:
    /// <c>torch.load(..., weights_only=True)</c>, verbatim; a [1, D, H, W] map is then pooled as its image-search sample
    /// does, search_utils.adaptive_pooling), for each form of the answer a client can ask for: a float32 tensor whose
    /// values and shape are those of the same request answered as JSON floats, and for the CLS form the library's
    /// embeddings bit for bit. The forms are query strings, so a new one is one more test case.
    /// </summary>
    [TestCase("", "1, 48, 14, 14"), TestCase("features=cls", "48")]
    [Category(PythonTorch.Category)]
    public async Task PyTorchDecodesTheAnswerAsMicrosoftsClientDoes(string form, string shape)
    {
        PythonTorch.RequireOrIgnore("torch");
        await using var h = await StartTinyAsync();
        var body = ServerHarness.ScoreBody(Tiles());
        string ScorePath(string query) => "/score" + (query.Length == 0 ? "" : "?" + query);
        using var response = await h.PostScoreAsync(body, path: ScorePath(form));
        var text = await response.Content.ReadAsStringAsync();
        Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), text);
        using var jsonResponse = await h.PostScoreAsync(body, path: ScorePath(string.Join("&", new[] { form, "format=json" }.Where(q => q.Length > 0))));
        using var json = JsonDocument.Parse(await jsonResponse.Content.ReadAsStringAsync());
        var floats = json.RootElement.EnumerateArray().Select(r => JsonTensor(r.GetProperty("image_features"))).ToArray();

        var dir = FixturePaths.TempDir();
        try
        {
            var responsePath = Path.Combine(dir, "response.json");
            File.WriteAllText(responsePath, text);
            // The decoding line of Microsoft's sample client (healthcareai_toolkit GigaPathClient), verbatim, then the
            // pooling of its image-search sample (search_utils.adaptive_pooling), which needs the [1, D, H, W] map.
            const string script = """
import sys, io, json, base64, torch
result = json.load(open(sys.argv[1]))
for i, record in enumerate(result):
    t = torch.load(io.BytesIO(base64.b64decode(record["image_features"])), weights_only=True)
    assert isinstance(t, torch.Tensor), type(t)
    if t.dim() == 4:
        features = t.cpu().data.numpy()
        pooled = torch.nn.AdaptiveAvgPool2d((1, 1))(torch.tensor(features))
        pooled = torch.squeeze(pooled, dim=3).squeeze(2).squeeze(0).data.cpu().numpy()
        assert pooled.shape == (t.shape[1],), pooled.shape
    open(sys.argv[1] + f".{i}.raw", "wb").write(t.contiguous().numpy().tobytes())
    print(i, str(t.dtype), list(t.shape))
""";
            var (code, output) = PythonTorch.Run(script, new[] { responsePath }, "torch");
            Assert.That(code, Is.Zero, output);
            TestContext.Out.WriteLine($"interop: torch.load(weights_only=True) of /score{(form.Length > 0 ? "?" + form : "")}: {output.Trim().Replace('\n', ';')}");
            var lines = output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.That(lines, Has.Length.EqualTo(2), output);
            var library = LibraryEmbeddings();
            for (int i = 0; i < 2; i++)
            {
                Assert.That(lines[i], Is.EqualTo($"{i} torch.float32 [{string.Join(", ", floats[i].Shape)}]"), "float32, shaped as the JSON answer");
                Assert.That(string.Join(", ", floats[i].Shape), Is.EqualTo(shape), form.Length == 0 ? "the default: the patch-token map" : form);
                var raw = File.ReadAllBytes($"{responsePath}.{i}.raw");
                Assert.That(raw, Is.EqualTo(MemoryMarshal.AsBytes(floats[i].Data.AsSpan()).ToArray()), $"row {i}: the values of the JSON answer");
                if (form == "features=cls")
                    Assert.That(raw, Is.EqualTo(MemoryMarshal.AsBytes(library[i].AsSpan()).ToArray()), $"row {i}: the library's embedding");
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    /// <summary>A JSON number or nested arrays of numbers: the values row-major, and the nesting as the shape.</summary>
    private static (float[] Data, long[] Shape) JsonTensor(JsonElement e)
    {
        if (e.ValueKind != JsonValueKind.Array) return (new[] { e.GetSingle() }, Array.Empty<long>());
        var items = e.EnumerateArray().Select(JsonTensor).ToList();
        var inner = items.Count > 0 ? items[0].Shape : Array.Empty<long>();
        Assert.That(items.All(x => x.Shape.SequenceEqual(inner)), Is.True, "ragged JSON array");
        return (items.SelectMany(x => x.Data).ToArray(), new[] { (long)items.Count }.Concat(inner).ToArray());
    }

    [Test]
    public async Task JsonFloatsEqualTheTorchTensors()
    {
        await using var h = await StartTinyAsync();
        var torchFeatures = await h.ScoreAsync(Tiles());
        using var response = await h.PostScoreAsync(ServerHarness.ScoreBody(Tiles()), path: "/score?format=json&features=cls");
        using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        var floats = doc.RootElement.EnumerateArray().Select(r => r.GetProperty("image_features").EnumerateArray().Select(v => v.GetSingle()).ToArray()).ToArray();
        for (int i = 0; i < 2; i++)
            Assert.That(Bitwise(floats[i], torchFeatures[i]), Is.True, $"row {i}");
    }

    [Test]
    public async Task ImagesThatCannotBeUsedNameTheirRow()
    {
        await using var h = await StartTinyAsync(o => o with { MaxImagePixels = 200 * 200 });
        var tiles = Tiles();
        var cases = new (byte[][] Rows, int Status, int Row, string Message)[]
        {
            (new[] { tiles[0], Encoding.ASCII.GetBytes("this is not an image at all") }, 422, 1, "row 1"),
            (new[] { tiles[0], tiles[0][..200] }, 422, 1, "row 1"),
            // 01581x_25327y.png is 256x256 = 65,536 pixels, over the 40,000 allowed here.
            (new[] { tiles[0], tiles[0], tiles[1] }, 413, 2, "256x256"),
            // A decompression bomb (about 1 kB declaring 100,000 x 100,000 pixels), refused from its header.
            (new[] { PngBomb(100_000, 100_000) }, 413, 0, "100000x100000"),
        };
        foreach (var (rows, status, row, message) in cases)
        {
            using var response = await h.PostScoreAsync(ServerHarness.ScoreBody(rows));
            var text = await response.Content.ReadAsStringAsync();
            var error = ServerHarness.ReadError(response, text);
            Assert.That(error.Status, Is.EqualTo(status), text);
            Assert.That(error.Row, Is.EqualTo(row), text);
            Assert.That(error.Error, Does.Contain(message), text);
        }
        Assert.That(await h.ScoreAsync(new[] { tiles[0] }), Has.Length.EqualTo(1), "still serving");
    }

    /// <summary>
    /// 64 clients, three requests each, all in flight at once, with 1 or 2 tiles each: 320 images. The worker fills
    /// every batch to 16 (it waits up to a minute for a batch to fill, and images never stop coming until the last),
    /// so there are exactly 20 forward passes for 192 requests: requests shared batches, and every answer must still
    /// equal the single-request library result bit for bit.
    /// </summary>
    [Test]
    public async Task SixtyFourClientsGetCorrectAnswersWhileProbesKeepAnswering()
    {
        var library = LibraryEmbeddings();
        var tiles = Tiles();
        await using var h = await StartTinyAsync(o => o with { BatchSize = 16, MaxBatchDelayMs = 60_000, QueueCapacity = 512 });
        const int clients = 64, requestsPerClient = 3;
        using var stop = new CancellationTokenSource();
        int healthOk = 0, healthFailed = 0;
        var prober = Task.Run(async () =>
        {
            while (!stop.IsCancellationRequested)
            {
                using var r = await h.Client.GetAsync("/health");
                if (r.StatusCode == HttpStatusCode.OK) Interlocked.Increment(ref healthOk);
                else Interlocked.Increment(ref healthFailed);
                await Task.Delay(10);
            }
        });
        int wrong = 0;
        // Each request asks for a different mix: 1 or 2 tiles, either order; over k = 0..2 a client sends 1 + 2 + 2.
        static int[] Order(int c, int k) => ((c + k) % 3) switch { 0 => new[] { 0 }, 1 => new[] { 1, 0 }, _ => new[] { 0, 1 } };
        var work = Enumerable.Range(0, clients).SelectMany(c => Enumerable.Range(0, requestsPerClient).Select(k => Task.Run(async () =>
        {
            var order = Order(c, k);
            var features = await h.ScoreAsync(order.Select(i => tiles[i]));
            for (int i = 0; i < order.Length; i++)
                if (!Bitwise(features[i], library[order[i]])) Interlocked.Increment(ref wrong);
        }))).ToList();
        await Task.WhenAll(work).WaitAsync(TimeSpan.FromMinutes(5));
        stop.Cancel();
        await prober;

        Assert.That(wrong, Is.Zero, "every embedding equals the single-request library result bit for bit, whatever batch it shared");
        Assert.That(healthOk, Is.GreaterThan(0));
        Assert.That(healthFailed, Is.Zero);
        var metrics = h.Server.Metrics;
        Assert.That(metrics.RequestCount("score", 200), Is.EqualTo(clients * requestsPerClient));
        int images = Enumerable.Range(0, clients).Sum(c => Enumerable.Range(0, requestsPerClient).Sum(k => Order(c, k).Length));
        Assert.That(images, Is.EqualTo(320));
        Assert.That(metrics.ImagesEmbedded, Is.EqualTo(images));
        var text = metrics.Render();
        TestContext.Out.WriteLine(string.Join("\n", text.Split('\n').Where(l => l.StartsWith("gigapath_batch_size") || l.Contains("quantile"))));
        Assert.That(text, Does.Contain("gigapath_batch_size_count 20\n").And.Contain("gigapath_batch_size_sum 320\n"),
            "20 full batches of 16 for 192 requests of at most 2 images: every batch held images of several requests");
        Assert.That(text, Does.Contain("gigapath_batch_size_bucket{le=\"8\"} 0\n"));
        Assert.That(text, Does.Contain("gigapath_queue_depth 0\n"));
    }

    /// <summary>
    /// A decompression bomb: a small, well-formed PNG (IHDR, one IDAT of deflated zeros, IEND) whose header declares
    /// a huge RGB image; decoding it would allocate width × height × 4 bytes.
    /// </summary>
    private static byte[] PngBomb(int width, int height)
    {
        var ms = new MemoryStream();
        ms.Write(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A });
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; // bit depth
        ihdr[9] = 2; // colour type RGB
        WriteChunk(ms, "IHDR", ihdr);
        var zeros = new MemoryStream();
        using (var z = new ZLibStream(zeros, CompressionLevel.SmallestSize, leaveOpen: true))
            z.Write(new byte[1 << 20]);
        WriteChunk(ms, "IDAT", zeros.ToArray());
        WriteChunk(ms, "IEND", Array.Empty<byte>());
        return ms.ToArray();
    }

    private static void WriteChunk(Stream s, string type, byte[] data)
    {
        var typed = Encoding.ASCII.GetBytes(type).Concat(data).ToArray();
        var buf = new byte[4];
        BinaryPrimitives.WriteInt32BigEndian(buf, data.Length);
        s.Write(buf);
        s.Write(typed);
        BinaryPrimitives.WriteUInt32BigEndian(buf, Crc32.Compute(typed));
        s.Write(buf);
    }
}
