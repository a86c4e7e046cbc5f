using System.Net;
using GigaPath.Models.Tile;
using GigaPath.Server.Scoring;
using GigaPath.Tests.Models.Tile;
using NUnit.Framework;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Tests.Server;

/// <summary>
/// <c>serve --encoder virchow2</c> on the Virchow2 fixture: the default /score map is the patch tokens without the
/// class and register rows ([1, D, 16, 16] for patch 14), and <c>features=cls</c> the encoder's own embedding
/// (class token ⊕ patch mean, 2·D), both equal to the library's.
/// </summary>
public class OtherEncoderScoringTests
{
    [Test]
    public async Task ScoreAnswersWithThatEncodersTokensAndEmbedding()
    {
        var dir = FixturePaths.TempDir("serve-virchow2");
        try
        {
            FamilyFixtures.Publish("virchow2", dir);
            var images = FamilyFixtures.Images("virchow2");

            float[] tokens, embeddings;
            int prefix, grid, d;
            using (var scope = NewDisposeScope())
            using (var encoder = TileEncoder.Load(dir, new TileEncoderOptions { Encoder = "virchow2" }))
            {
                using var pixels = encoder.Preprocessor.PreprocessFiles(images, 0, images.Length);
                using var result = encoder.Embed(pixels, returnTokens: true);
                tokens = result.Tokens!.data<float>().ToArray();
                embeddings = result.Embeddings.data<float>().ToArray();
                (prefix, grid, d) = (encoder.Config.PrefixTokens, encoder.Config.GridSize, encoder.Config.EmbedDim);
            }
            Assert.That((prefix, grid), Is.EqualTo((5, 16)));

            await using var h = await ServerHarness.StartAsync(ServerHarness.Options(o => o with { ModelDir = dir, Encoder = "virchow2" }), TileEncoderBackend.Load);
            var body = ServerHarness.ScoreBody(images.Select(File.ReadAllBytes));
            using var mapResponse = await h.PostScoreAsync(body);
            var mapText = await mapResponse.Content.ReadAsStringAsync();
            Assert.That(mapResponse.StatusCode, Is.EqualTo(HttpStatusCode.OK), mapText);
            var maps = ServerHarness.DecodeTorchTensors(mapText);
            int seq = prefix + grid * grid;
            double worst = 0;
            for (int t = 0; t < 2; t++)
            {
                Assert.That(maps[t].Shape, Is.EqualTo(new long[] { 1, d, grid, grid }));
                for (int c = 0; c < d; c++)
                    for (int p = 0; p < grid * grid; p++)
                        worst = Math.Max(worst, Math.Abs(maps[t].Data[c * grid * grid + p] - tokens[(t * seq + prefix + p) * d + c]));
            }
            TestContext.Out.WriteLine($"virchow2 map vs tokens rows {prefix}..: max abs diff {worst:E2}");
            Assert.That(worst, Is.LessThanOrEqualTo(1e-5));

            using var clsResponse = await h.PostScoreAsync(body, path: "/score?features=cls");
            var clsText = await clsResponse.Content.ReadAsStringAsync();
            Assert.That(clsResponse.StatusCode, Is.EqualTo(HttpStatusCode.OK), clsText);
            var cls = ServerHarness.DecodeTorchTensors(clsText);
            for (int t = 0; t < 2; t++)
            {
                Assert.That(cls[t].Shape, Is.EqualTo(new long[] { 2 * d }));
                double diff = cls[t].Data.Select((v, i) => Math.Abs(v - embeddings[t * 2 * d + i])).Max();
                Assert.That(diff, Is.LessThanOrEqualTo(1e-5), $"row {t}");
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }
}
