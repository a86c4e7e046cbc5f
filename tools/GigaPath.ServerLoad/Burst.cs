using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using GigaPath.Imaging;
using SkiaSharp;

namespace GigaPath.ServerLoad;

/// <summary>
/// The memory bursts of issue 25 against a real <c>gigapath serve</c> process on 127.0.0.1 (a fresh one per burst):
/// <c>png</c> (16 concurrent <c>/score</c> × 16 PNG 4096²), <c>webp</c> (16 × 4 lossless WebP 4096²) and <c>slide</c>
/// (6 concurrent <c>/score/slide</c> with 50,000-tile JSON). Reports the server's resident memory once idle after a
/// warm-up, its peak during the burst (sampled every 10 ms, and the kernel's high-water mark), the load average and the
/// status counts.
/// <code>
/// dotnet run -c Release --project tools/GigaPath.ServerLoad -- burst --cli src/GigaPath.Cli/bin/Release/net10.0/GigaPath.Cli.dll \
///     --model weights/demo/tile --slide-model weights/demo/slide [--kinds png,webp,slide] [-- extra serve options]
/// </code>
/// </summary>
internal static class Burst
{
    public static async Task<int> RunAsync(string[] args)
    {
        string cli = "", model = "", slideModel = "";
        var kinds = new[] { "png", "webp", "slide" };
        int slideDim = 192, rounds = 1;
        int? clientsOverride = null;
        var extra = new List<string>();
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--cli": cli = Next(); break;
                case "--model": model = Next(); break;
                case "--slide-model": slideModel = Next(); break;
                case "--kinds": kinds = Next().Split(','); break;
                case "--slide-dim": slideDim = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--clients": clientsOverride = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--rounds": rounds = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--": extra.AddRange(args[(i + 1)..]); i = args.Length; break;
                default: throw new ArgumentException($"unknown option {args[i]}");
            }
        }
        Console.WriteLine("| burst | requests | idle RSS MiB | peak RSS MiB (sampled) | VmHWM MiB | peak - idle MiB | statuses | seconds | load average |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
        foreach (var kind in kinds)
        {
            var (path, body, type, clients) = kind switch
            {
                "png" => ("/score", ScoreBody(Enumerable.Repeat(Png(4096), 16)), "application/json", 16),
                "webp" => ("/score", ScoreBody(Enumerable.Repeat(LosslessWebp(4096), 4)), "application/json", 16),
                "slide" => ("/score/slide", SlideJson(50_000, slideDim), "application/json", 6),
                _ => throw new ArgumentException($"unknown burst {kind}"),
            };
            for (int round = 0; round < rounds; round++)
                await OneAsync(kind, cli, model, slideModel, extra, path, body, type, clientsOverride ?? clients);
        }
        return 0;
    }

    private static async Task OneAsync(string kind, string cli, string model, string slideModel, List<string> extra, string path, byte[] body, string type, int clients)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { cli, "serve", "--urls", "http://127.0.0.1:0", "--model", model, "--slide-model", slideModel }.Concat(extra))
            psi.ArgumentList.Add(a);
        using var server = Process.Start(psi)!;
        var listening = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var log = new StringBuilder();
        void OnLine(string? line)
        {
            if (line is null) return;
            lock (log) log.AppendLine(line);
            var m = Regex.Match(line, @"listening on (http://127\.0\.0\.1:\d+)");
            if (m.Success) listening.TrySetResult(m.Groups[1].Value);
        }
        server.OutputDataReceived += (_, e) => OnLine(e.Data);
        server.ErrorDataReceived += (_, e) => OnLine(e.Data);
        server.BeginOutputReadLine();
        server.BeginErrorReadLine();
        try
        {
            var url = await listening.Task.WaitAsync(TimeSpan.FromSeconds(120));
            using var client = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromMinutes(10) };
            for (int i = 0; i < 600 && (await client.GetAsync("/ready")).StatusCode != HttpStatusCode.OK; i++)
                await Task.Delay(100);
            // Warm up the path with one small request, then let the server go idle and give its memory back.
            var warm = kind == "slide" ? SlideJson(100, SlideDimOf(body)) : ScoreBody(new[] { Png(256) });
            using (var r = await client.PostAsync(path, Content(warm, type))) await r.Content.ReadAsByteArrayAsync();
            await Task.Delay(2000);
            long idle = Status(server.Id, "VmRSS:");

            long peak = idle;
            using var stop = new CancellationTokenSource();
            var sampler = Task.Run(async () =>
            {
                while (!stop.IsCancellationRequested)
                {
                    peak = Math.Max(peak, Status(server.Id, "VmRSS:"));
                    await Task.Delay(10);
                }
            });
            var clock = Stopwatch.StartNew();
            var statuses = await Task.WhenAll(Enumerable.Range(0, clients).Select(_ => Task.Run(async () =>
            {
                using var r = await client.PostAsync(path, Content(body, type));
                await r.Content.ReadAsByteArrayAsync();
                return (int)r.StatusCode;
            })));
            double seconds = clock.Elapsed.TotalSeconds;
            await Task.Delay(500);
            stop.Cancel();
            await sampler;
            long hwm = Status(server.Id, "VmHWM:");
            var counts = string.Join(", ", statuses.GroupBy(s => s).OrderBy(g => g.Key).Select(g => $"{g.Count()}× {g.Key}"));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {kind} | {clients} × {body.Length / 1024.0 / 1024:F1} MB | {idle >> 20} | {peak >> 20} | {hwm >> 20} | {(peak - idle) >> 20} | {counts} | {seconds:F1} | {LoadAverage()} |"));
        }
        finally
        {
            if (!server.HasExited) server.Kill(entireProcessTree: true);
            await server.WaitForExitAsync();
        }
    }

    private static int SlideDimOf(byte[] json)
    {
        using var doc = JsonDocument.Parse(json);
        return doc.RootElement.GetProperty("tile_embeddings")[0].GetArrayLength();
    }

    private static ByteArrayContent Content(byte[] body, string type) =>
        new(body) { Headers = { ContentType = new System.Net.Http.Headers.MediaTypeHeaderValue(type) } };

    private static long Status(int pid, string field)
    {
        var line = File.ReadLines($"/proc/{pid}/status").First(l => l.StartsWith(field, StringComparison.Ordinal));
        return long.Parse(line[field.Length..].Trim().Split(' ')[0], CultureInfo.InvariantCulture) * 1024;
    }

    private static string LoadAverage() => string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3));

    private static byte[] ScoreBody(IEnumerable<byte[]> images)
    {
        var rows = images.Select(i => new[] { Convert.ToBase64String(i) }).ToArray();
        return JsonSerializer.SerializeToUtf8Bytes(new { input_data = new { columns = new[] { "image" }, index = Enumerable.Range(0, rows.Length), data = rows } });
    }

    /// <summary>A side × side RGB PNG of a smooth gradient (compresses to a small fraction of its pixels).</summary>
    private static byte[] Png(int side) => ImageDecoder.EncodePng(Gradient(side));

    private static RgbImage Gradient(int side)
    {
        var pixels = new byte[(long)side * side * 3];
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++)
            {
                long p = ((long)y * side + x) * 3;
                pixels[p] = (byte)(x >> 4);
                pixels[p + 1] = (byte)(y >> 4);
                pixels[p + 2] = 128;
            }
        return new RgbImage(side, side, pixels);
    }

    /// <summary>A side × side lossless WebP of the same gradient (tens of kilobytes that decode to side² × 4 bytes).</summary>
    private static unsafe byte[] LosslessWebp(int side)
    {
        var rgb = Gradient(side).Pixels;
        var rgba = new byte[(long)side * side * 4];
        for (long i = 0, p = 0, q = 0; i < (long)side * side; i++, p += 3, q += 4)
        {
            rgba[q] = rgb[p];
            rgba[q + 1] = rgb[p + 1];
            rgba[q + 2] = rgb[p + 2];
            rgba[q + 3] = 255;
        }
        var info = new SKImageInfo(side, side, SKColorType.Rgba8888, SKAlphaType.Opaque);
        fixed (byte* ptr = rgba)
        {
            using var pixmap = new SKPixmap(info, (IntPtr)ptr, info.RowBytes);
            using var data = pixmap.Encode(new SKWebpEncoderOptions(SKWebpEncoderCompression.Lossless, 100)) ?? throw new InvalidOperationException("WebP encoding failed");
            return data.ToArray();
        }
    }

    /// <summary>A <c>/score/slide</c> JSON body of <paramref name="tiles"/> tiles of <paramref name="dim"/> random values on a grid.</summary>
    private static byte[] SlideJson(int tiles, int dim)
    {
        var random = new Random(25);
        var sb = new StringBuilder("{\"tile_embeddings\": [");
        for (int t = 0; t < tiles; t++)
        {
            sb.Append(t == 0 ? "[" : ",[");
            for (int d = 0; d < dim; d++)
                sb.Append(CultureInfo.InvariantCulture, $"{(d == 0 ? "" : ",")}{random.NextSingle() - 0.5f:F4}");
            sb.Append(']');
        }
        sb.Append("], \"coords\": [");
        int side = (int)Math.Ceiling(Math.Sqrt(tiles));
        for (int t = 0; t < tiles; t++)
            sb.Append(CultureInfo.InvariantCulture, $"{(t == 0 ? "" : ",")}[{t % side * 256},{t / side * 256}]");
        sb.Append("]}");
        return Encoding.UTF8.GetBytes(sb.ToString());
    }
}
