using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json;
using GigaPath.Models.Tile;
using GigaPath.Server.Hosting;
using GigaPath.Server.Scoring;

namespace GigaPath.ServerLoad;

/// <summary>
/// Load measurement for <c>gigapath serve</c>: starts the server in this process on a free loopback port, sends
/// <c>--clients</c> concurrent clients × <c>--requests</c> requests of <c>--images</c> tiles each, and reports images/s
/// and request latency (p50/p90/p99), once with dynamic batching on and once off (batch size 1).
/// <code>
/// dotnet run -c Release --project tools/GigaPath.ServerLoad -- --model tests/GigaPath.Tests/Fixtures/tile_encoder_tiny
/// dotnet run -c Release --project tools/GigaPath.ServerLoad -- --random-full-size --clients 4 --requests 1
/// </code>
/// With <c>burst</c> first it measures a server process's memory under the bursts of issue 25 instead (see <see cref="Burst"/>).
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] args)
    {
        if (args.Length > 0 && args[0] == "burst")
            return await Burst.RunAsync(args[1..]);
        var a = Args.Parse(args);
        var tiles = Directory.GetFiles(a.TilesDir, "*.png").Order(StringComparer.Ordinal).Select(File.ReadAllBytes).ToArray();
        if (tiles.Length == 0)
        {
            Console.Error.WriteLine($"no .png tiles in {a.TilesDir}");
            return 2;
        }
        Console.WriteLine($"model: {(a.RandomFullSize ? "random Prov-GigaPath (full size)" : a.Model)}; tiles: {tiles.Length} from {a.TilesDir}");
        Console.WriteLine($"machine load average at start: {LoadAverage()}");
        Console.WriteLine($"load: {a.Clients} clients x {a.Requests} requests x {a.Images} images; {Environment.ProcessorCount} cores, torch threads {TorchSharp.torch.get_num_threads()}");
        Console.WriteLine();
        Console.WriteLine("| batching | batch size | delay ms | images/s | p50 s | p90 s | p99 s | mean batch | inference s | preprocess s | process CPU s | CPU ms/image |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|---|---|---|");
        foreach (var batching in a.Modes)
        {
            var options = new ServerOptions
            {
                ModelDir = a.Model,
                Urls = new[] { "http://127.0.0.1:0" },
                BatchSize = batching ? a.BatchSize : 1,
                MaxBatchDelayMs = batching ? a.DelayMs : 0,
                QueueCapacity = Math.Max(256, a.Clients * a.Images),
                MaxImagesPerRequest = Math.Max(64, a.Images),
            };
            Func<ServerOptions, ITileEmbeddingBackend> factory = a.RandomFullSize
                ? _ => new TileEncoderBackend(TileEncoder.CreateRandom(TileEncoderConfig.ProvGigaPath, seed: 1))
                : TileEncoderBackend.Load;
            await using var server = new ScoringServer(options, factory, logging: _ => { });
            await server.StartAsync();
            await server.WaitUntilReadyAsync();
            using var client = new HttpClient { BaseAddress = new Uri(server.Addresses[0]), Timeout = TimeSpan.FromMinutes(30) };

            // One warm-up request: first-call costs (JIT, allocator) are not what is measured.
            await Post(client, Body(tiles, 0, 1));
            var before = Scrape(server);

            var latencies = new List<double>();
            var cpuBefore = Process.GetCurrentProcess().TotalProcessorTime;
            var clock = Stopwatch.StartNew();
            var work = Enumerable.Range(0, a.Clients).Select(c => Task.Run(async () =>
            {
                for (int r = 0; r < a.Requests; r++)
                {
                    var body = Body(tiles, c + r, a.Images);
                    var t = Stopwatch.StartNew();
                    await Post(client, body);
                    lock (latencies) latencies.Add(t.Elapsed.TotalSeconds);
                }
            }));
            await Task.WhenAll(work);
            double wall = clock.Elapsed.TotalSeconds;
            // CPU time, unlike wall time, is not inflated by other processes on a shared machine.
            double cpu = (Process.GetCurrentProcess().TotalProcessorTime - cpuBefore).TotalSeconds;
            var after = Scrape(server);

            latencies.Sort();
            double Q(double q) => latencies[Math.Clamp((int)Math.Ceiling(q * latencies.Count) - 1, 0, latencies.Count - 1)];
            int images = a.Clients * a.Requests * a.Images;
            double batches = after["gigapath_batch_size_count"] - before["gigapath_batch_size_count"];
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {(batching ? "on" : "off")} | {options.BatchSize} | {options.MaxBatchDelayMs} | {images / wall:F2} | {Q(0.5):F3} | {Q(0.9):F3} | {Q(0.99):F3} | " +
                $"{(after["gigapath_batch_size_sum"] - before["gigapath_batch_size_sum"]) / batches:F1} | " +
                $"{after["gigapath_inference_seconds_total"] - before["gigapath_inference_seconds_total"]:F2} | " +
                $"{after["gigapath_preprocess_seconds_total"] - before["gigapath_preprocess_seconds_total"]:F2} | {cpu:F2} | {1000 * cpu / images:F1} |"));
        }
        return 0;
    }

    private static string LoadAverage() =>
        File.Exists("/proc/loadavg") ? string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)) : "n/a";

    private static string Body(byte[][] tiles, int seed, int count)
    {
        var rows = Enumerable.Range(0, count).Select(i => new[] { Convert.ToBase64String(tiles[(seed + i) % tiles.Length]) }).ToArray();
        return JsonSerializer.Serialize(new { input_data = new { columns = new[] { "image" }, index = Enumerable.Range(0, count), data = rows } });
    }

    private static async Task Post(HttpClient client, string body)
    {
        using var response = await client.PostAsync("/score", new StringContent(body, Encoding.UTF8, "application/json"));
        if (!response.IsSuccessStatusCode)
            throw new InvalidOperationException($"/score answered {(int)response.StatusCode}: {await response.Content.ReadAsStringAsync()}");
        await response.Content.ReadAsByteArrayAsync();
    }

    /// <summary>The unlabelled series of the server's /metrics text.</summary>
    private static Dictionary<string, double> Scrape(ScoringServer server) =>
        server.Metrics.Render().Split('\n')
            .Where(l => l.Length > 0 && l[0] != '#' && !l.Contains('{'))
            .Select(l => l.Split(' '))
            .ToDictionary(p => p[0], p => double.Parse(p[1], CultureInfo.InvariantCulture));

    private sealed record Args(string Model, bool RandomFullSize, string TilesDir, int Clients, int Requests, int Images, int BatchSize, int DelayMs, bool[] Modes)
    {
        public static Args Parse(string[] args)
        {
            var a = new Args(Path.Combine("tests", "GigaPath.Tests", "Fixtures", "tile_encoder_tiny"), false,
                Path.Combine("tests", "GigaPath.Tests", "Fixtures", "preprocess"), 16, 20, 1, 16, 5, new[] { true, false });
            for (int i = 0; i < args.Length; i++)
            {
                string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
                a = args[i] switch
                {
                    "--model" => a with { Model = Next() },
                    "--random-full-size" => a with { RandomFullSize = true },
                    "--tiles" => a with { TilesDir = Next() },
                    "--clients" => a with { Clients = int.Parse(Next(), CultureInfo.InvariantCulture) },
                    "--requests" => a with { Requests = int.Parse(Next(), CultureInfo.InvariantCulture) },
                    "--images" => a with { Images = int.Parse(Next(), CultureInfo.InvariantCulture) },
                    "--batch-size" => a with { BatchSize = int.Parse(Next(), CultureInfo.InvariantCulture) },
                    "--delay-ms" => a with { DelayMs = int.Parse(Next(), CultureInfo.InvariantCulture) },
                    "--modes" => a with { Modes = Next().Split(',').Select(m => m == "on").ToArray() },
                    _ => throw new ArgumentException($"unknown option {args[i]}"),
                };
            }
            return a;
        }
    }
}
