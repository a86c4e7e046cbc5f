using GigaPath.Imaging;
using System.Diagnostics;
using GigaPath.Models.Tile;
using GigaPath.Runtime;
using GigaPath.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Pipeline;

/// <summary>Progress of a tile embedding run: tiles done out of the total, and the time spent so far.</summary>
internal readonly record struct TileProgress(int Done, int Total, TimeSpan Elapsed)
{
    public double TilesPerSecond => Elapsed.TotalSeconds > 0 ? Done / Elapsed.TotalSeconds : 0;
}

/// <summary>
/// Embeds a list of tiles in batches and collects the results in input order. The next batch is read (decoded and
/// preprocessed) while the current one runs through the model. Results do not depend on the batch size.
/// </summary>
internal static class TileEmbedding
{
    /// <summary>
    /// Loads the model, embeds every tile of <paramref name="request"/> and writes the output file. Inputs are checked
    /// before the weights are loaded, so a typo fails in milliseconds rather than after seconds of loading.
    /// </summary>
    public static TileEmbeddingSummary Execute(TileEmbeddingRequest request, IProgress<TileProgress>? progress = null, CancellationToken cancellation = default)
    {
        var clock = Stopwatch.StartNew();
        if (!request.OutputPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            throw new GigaPathException($"--out {request.OutputPath}: the output file name must end in .safetensors");
        if ((request.PixelFile is null) == (request.Images.Count == 0))
            throw new GigaPathException("give either tile images/folders or --pixels FILE.safetensors (exactly one of them)");
        if (request.BatchSize <= 0)
            throw new GigaPathException($"--batch-size must be positive, got {request.BatchSize}");
        TilePreprocessor.CheckMaxAspectRatio(request.MaxAspectRatio);
        var files = request.PixelFile is null ? ImageFileInputs.Expand(request.Images) : null;
        if (request.PixelFile is not null && !File.Exists(request.PixelFile))
            throw new GigaPathException($"{request.PixelFile}: --pixels file not found");

        using var encoder = TileEncoder.Load(request.ModelDir, request.Encoder);
        long[]? coords = null;
        string input;
        TileEmbeddings result;
        if (files is null)
        {
            using var source = PixelFileInputs.Open(request.PixelFile!, encoder.Config);
            result = Run(encoder, source, request.BatchSize, request.Tokens, progress, cancellation);
            input = $"pixel_values of {Path.GetFileName(request.PixelFile)}";
        }
        else
        {
            coords = ImageFileInputs.ParseCoordinates(files);
            result = Run(encoder, new ImageFileInputs(files, encoder.Config, request.MaxAspectRatio), request.BatchSize, request.Tokens, progress, cancellation);
            input = $"{files.Count} image files";
        }
        using (result)
        {
            Write(request.OutputPath, encoder, result, coords, new Dictionary<string, string> { ["input"] = input });
            return new TileEmbeddingSummary(request.OutputPath, result.Count, result.Embeddings.shape[1], coords is not null, result.Tokens is not null, clock.Elapsed);
        }
    }

    public static TileEmbeddings Run(TileEncoder encoder, ITileInputs inputs, int batchSize, bool returnTokens = false,
        IProgress<TileProgress>? progress = null, CancellationToken cancellation = default)
    {
        if (batchSize <= 0)
            throw new GigaPathException($"--batch-size must be positive, got {batchSize}");
        if (inputs.Count == 0)
            throw new GigaPathException("no tiles to embed");
        var clock = Stopwatch.StartNew();
        var embeddings = new List<Tensor>();
        var tokens = new List<Tensor>();
        Task<Tensor>? pending = null;
        try
        {
            Task<Tensor> Read(int start) => Task.Run(() => inputs.ReadBatch(start, Math.Min(batchSize, inputs.Count - start)), cancellation);
            pending = Read(0);
            for (int start = 0; start < inputs.Count; start += batchSize)
            {
                cancellation.ThrowIfCancellationRequested();
                using var pixels = (pending ?? Read(start)).GetAwaiter().GetResult();
                pending = start + batchSize < inputs.Count ? Read(start + batchSize) : null;
                TileEmbeddings result;
                try
                {
                    result = encoder.Embed(pixels, returnTokens);
                }
                catch (NonFiniteOutputException e)
                {
                    throw e.Naming(inputs.Describe(start + (int)e.Row));
                }
                embeddings.Add(result.Embeddings);
                if (result.Tokens is not null) tokens.Add(result.Tokens);
                progress?.Report(new TileProgress(start + (int)pixels.shape[0], inputs.Count, clock.Elapsed));
            }
            return new TileEmbeddings(torch.cat(embeddings, 0), returnTokens ? torch.cat(tokens, 0) : null);
        }
        finally
        {
            // Let an in-flight read finish (it owns a tensor) before the batches are released.
            if (pending is not null)
            {
                try
                {
                    pending.GetAwaiter().GetResult().Dispose();
                }
                catch (Exception)
                {
                    // Only reached while another failure unwinds; that one is reported, not this read-ahead's.
                }
            }
            foreach (var t in embeddings.Concat(tokens)) t.Dispose();
        }
    }

    /// <summary>
    /// Writes <c>embeddings</c> [N, D] float32, <c>tokens</c> [N, prefix + patches, D] when present and <c>coords</c> [N, 2]
    /// int64 when given, with provenance (model hash and config, dtype, engine version) in <c>__metadata__</c>.
    /// </summary>
    public static void Write(string path, TileEncoder encoder, TileEmbeddings result, long[]? coords, IReadOnlyDictionary<string, string>? extraMetadata = null)
    {
        using var scope = torch.NewDisposeScope();
        var tensors = new List<KeyValuePair<string, Tensor>> { new("embeddings", result.Embeddings) };
        if (result.Tokens is not null) tensors.Add(new("tokens", result.Tokens));
        if (coords is not null) tensors.Add(new("coords", torch.tensor(coords, [coords.Length / 2, 2], ScalarType.Int64)));
        var metadata = new Dictionary<string, string>
        {
            ["format"] = "pt",
            ["encoder"] = encoder.Config.Encoder,
            ["model_config"] = encoder.Config.Describe(),
            ["model_sha256"] = encoder.WeightsSha256,
            ["dtype"] = DeviceSelection.Name(encoder.Options.DType),
            ["device"] = encoder.Options.Device.ToString(),
            ["engine"] = EngineInfo.Name,
            ["engine_version"] = EngineInfo.Version,
            ["torchsharp_version"] = EngineInfo.TorchSharpVersion,
            ["num_tiles"] = result.Count.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        if (encoder.Source is not null)
            metadata["model"] = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(encoder.Source)));
        foreach (var (k, v) in extraMetadata ?? new Dictionary<string, string>())
            metadata[k] = v;
        SafeTensorsWriter.Write(path, tensors, metadata);
    }
}
