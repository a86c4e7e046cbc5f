using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using GigaPath.Server.Scoring;
using GigaPath.Server.Slide;
using GigaPath.Weights;
using NUnit.Framework;

namespace GigaPath.Tests.Server;

/// <summary>
/// The answer shapes Microsoft's clients expect from the Azure Prov-GigaPath endpoint: by default a
/// [1, D, H/p, W/p] patch-token map (1×1536×14×14 for the real model; 1×48×14×14 for the tiny fixture), equal to
/// <c>embed-tiles --tokens</c> rows 1… turned channels first; <c>features=cls</c> for the [D] tile embedding;
/// <c>format=json</c> nested lists of either; and <c>/score/slide</c> on a resampled slide's file equal to embed-slide.
/// </summary>
public class AzureContractTests
{
    private static readonly string[] TileFiles = { "prov_normal_000_1.png", "01581x_25327y.png" };
    private const int D = 48, G = 14;

    private static byte[][] Tiles() => TileFiles.Select(f => File.ReadAllBytes(FixturePaths.Get("preprocess", f))).ToArray();

    private static Task<ServerHarness> StartAsync() =>
        ServerHarness.StartAsync(ServerHarness.Options(o => o with { SlideModelDir = FixturePaths.Get("slide_encoder_tiny") }),
            TileEncoderBackend.Load, SlideEncoderBackend.Load);

    /// <summary>embed-tiles --tokens on the two tiles: embeddings [2, D] and tokens [2, 1 + G², D].</summary>
    private static (float[] Embeddings, float[] Tokens) EmbedTilesCli(string dir)
    {
        var output = Path.Combine(dir, "tiles.safetensors");
        var args = new[] { "embed-tiles", "--model", FixturePaths.Get("tile_encoder_tiny"), "--out", output, "--tokens" }
            .Concat(TileFiles.Select(f => FixturePaths.Get("preprocess", f))).ToArray();
        Assert.That(GigaPath.Cli.Program.Main(args), Is.Zero, "embed-tiles");
        using var file = SafeTensorsFile.Open(output);
        var (tokens, shape) = file.ReadFloats("tokens");
        Assert.That(shape, Is.EqualTo(new long[] { 2, 1 + G * G, D }));
        return (file.ReadFloats("embeddings").Data, tokens);
    }

    private static float[] Flatten(JsonElement e) => e.ValueKind == JsonValueKind.Array
        ? e.EnumerateArray().SelectMany(Flatten).ToArray()
        : new[] { e.GetSingle() };

    private static int Depth(JsonElement e) => e.ValueKind == JsonValueKind.Array ? 1 + Depth(e[0]) : 0;

    [Test]
    public async Task TheDefaultAnswerIsThePatchTokenMapAndFeaturesClsTheEmbedding()
    {
        var dir = FixturePaths.TempDir("azure-contract");
        try
        {
            var (embeddings, tokens) = EmbedTilesCli(dir);
            await using var h = await StartAsync();
            var body = ServerHarness.ScoreBody(Tiles());

            using var mapResponse = await h.PostScoreAsync(body);
            var mapText = await mapResponse.Content.ReadAsStringAsync();
            Assert.That(mapResponse.StatusCode, Is.EqualTo(HttpStatusCode.OK), mapText);
            var maps = ServerHarness.DecodeTorchTensors(mapText);
            double worst = 0;
            for (int t = 0; t < 2; t++)
            {
                Assert.That(maps[t].Shape, Is.EqualTo(new long[] { 1, D, G, G }), "Microsoft's notebook: 2-D feature map 1 x D x 14 x 14");
                // map[0, d, i, j] = tokens[t, 1 + i*G + j, d]: rows 1… of forward_features, channels first.
                for (int d = 0; d < D; d++)
                    for (int p = 0; p < G * G; p++)
                        worst = Math.Max(worst, Math.Abs(maps[t].Data[d * G * G + p] - tokens[(t * (1 + G * G) + 1 + p) * D + d]));
            }
            TestContext.Out.WriteLine($"map vs embed-tiles --tokens rows 1..: max abs diff {worst:E2}");
            Assert.That(worst, Is.LessThanOrEqualTo(1e-5));

            using var clsResponse = await h.PostScoreAsync(body, path: "/score?features=cls");
            var cls = ServerHarness.DecodeTorchFeatures(await clsResponse.Content.ReadAsStringAsync());
            // The CLS-only forward (features=cls, embed-tiles without --tokens) runs the last block for the CLS row alone,
            // so it may differ from the all-token forward in the last bits; TileScoringTests pins it bitwise to embed-tiles.
            for (int t = 0; t < 2; t++)
                Assert.That(cls[t].Zip(embeddings.AsSpan(t * D, D).ToArray()).Max(p => Math.Abs(p.First - p.Second)), Is.LessThanOrEqualTo(1e-5),
                    $"row {t}: features=cls is embed-tiles' embedding");

            foreach (var (path, depth, expected) in new[] { ("/score?format=json", 4, maps.Select(m => m.Data).ToArray()), ("/score?format=json&features=cls", 1, cls) })
            {
                using var response = await h.PostScoreAsync(body, path: path);
                using var doc = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
                var rows = doc.RootElement.EnumerateArray().Select(r => r.GetProperty("image_features")).ToList();
                for (int t = 0; t < 2; t++)
                {
                    Assert.That(Depth(rows[t]), Is.EqualTo(depth), path);
                    Assert.That(Flatten(rows[t]), Is.EqualTo(expected[t]), $"{path} row {t}: the torch tensor's values, nested as its shape");
                }
            }

            using var bad = await h.PostScoreAsync(body, path: "/score?features=everything");
            Assert.That(bad.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest));
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    [Test]
    public async Task SlideScoringOfAResampledSlidesFileEqualsEmbedSlide()
    {
        // A 0.25 µm/px slide tiled at 0.5 µm/px: level-0 coords 512 apart, coords_tiling 256 apart.
        var dir = FixturePaths.TempDir("azure-contract-slide");
        try
        {
            var grid = new (int X, int Y)[] { (0, 0), (1, 0), (3, 0), (0, 2), (2, 2) };
            var tiles = new GigaPath.IO.TileFeatures(Enumerable.Range(0, grid.Length * 32).Select(i => (float)Math.Cos(0.1 * i)).ToArray(), grid.Length, 32,
                grid.SelectMany(g => new double[] { g.X * 512, g.Y * 512 }).ToArray(), new Dictionary<string, object>())
            {
                TilingCoords = grid.SelectMany(g => new double[] { g.X * 256, g.Y * 256 }).ToArray(),
            };
            var h5 = Path.Combine(dir, "resampled.h5");
            GigaPath.IO.TileFeatureFile.WriteH5(h5, tiles, new Dictionary<string, object> { ["patch_size_level0"] = 512L, ["patch_size"] = 512L, ["patch_level"] = 0L });
            var cliOut = Path.Combine(dir, "cli.safetensors");
            Assert.That(GigaPath.Cli.Program.Main(["embed-slide", "--model", FixturePaths.Get("slide_encoder_tiny"), "--tiles", h5, "--out", cliOut]), Is.Zero);

            await using var h = await StartAsync();
            var content = new ByteArrayContent(File.ReadAllBytes(h5));
            content.Headers.ContentType = new MediaTypeHeaderValue("application/x-hdf5");
            using var response = await h.Client.PostAsync("/score/slide", content);
            var bytes = await response.Content.ReadAsByteArrayAsync();
            Assert.That(response.StatusCode, Is.EqualTo(HttpStatusCode.OK), System.Text.Encoding.UTF8.GetString(bytes));
            var served = Path.Combine(dir, "served.safetensors");
            File.WriteAllBytes(served, bytes);
            using var a = SafeTensorsFile.Open(cliOut);
            using var b = SafeTensorsFile.Open(served);
            Assert.That(b.Metadata["positions"], Is.EqualTo(a.Metadata["positions"]).And.EqualTo("coords_tiling"));
            foreach (var name in new[] { "slide_embedding", "last_hidden_state", "tile_embeddings_ctx" })
            {
                var (x, _) = a.ReadFloats(name);
                var (y, _) = b.ReadFloats(name);
                Assert.That(x.Zip(y).Max(p => Math.Abs(p.First - p.Second)), Is.LessThanOrEqualTo(1e-5), name);
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
