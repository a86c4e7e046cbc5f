using GigaPath.Imaging;
using System.Diagnostics;
using GigaPath.Models.Tile;
using GigaPath.Runtime;
using GigaPath.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Pipeline;

/// <summary>
/// Tile images (or preprocessed pixels) to a safetensors file of tile embeddings: checks the request, embeds its tiles
/// through the library's one loader
/// (<see cref="TileEncoder.Embed(TileSource, TileEmbeddingOptions?, IProgress{TileProgress}?, CancellationToken)"/>) and
/// writes the output file with its provenance. Results do not depend on the batch size.
/// </summary>
public static class TileEmbedding
{
    /// <summary>
    /// Loads the model, embeds every tile of <paramref name="request"/> and writes the output file: <c>embeddings</c>
    /// [N, D] float32, <c>coords</c> [N, 2] int64 when every image is named <c>{x}x_{y}y.png</c>, <c>tokens</c> when
    /// asked, with provenance in <c>__metadata__</c>. Inputs are checked before the weights are loaded, so a typo fails in
    /// milliseconds rather than after seconds of loading; refusals throw <see cref="GigaPathException"/>.
    /// </summary>
    /// <param name="request">The model, the tiles and the output file.</param>
    /// <param name="progress">Tiles done so far, reported on the embedding thread; may be null.</param>
    /// <param name="cancellationToken">Stops within one block of the model; nothing is written then.</param>
    public static TileEmbeddingSummary Execute(TileEmbeddingRequest request, IProgress<TileProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        var clock = Stopwatch.StartNew();
        if (!request.OutputPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            throw new GigaPathException($"{OptionNames.TileOutputPath} {request.OutputPath}: the output file name must end in .safetensors");
        if ((request.PixelFile is null) == (request.Images.Count == 0))
            throw new GigaPathException($"give either tile images/folders or {OptionNames.PixelFile} (a .safetensors file), exactly one of them");
        if (request.BatchSize <= 0)
            throw new GigaPathException($"{OptionNames.TileBatchSize} must be positive, got {request.BatchSize}");
        TilePreprocessor.CheckMaxAspectRatio(request.MaxAspectRatio);
        var files = request.PixelFile is null ? ImageFileInputs.Expand(request.Images) : null;
        if (request.PixelFile is not null && !File.Exists(request.PixelFile))
            throw new GigaPathException($"{request.PixelFile}: {OptionNames.PixelFile} file not found");

        using var encoder = TileEncoder.Load(request.ModelDirectory, request.EncoderOptions);
        var options = new TileEmbeddingOptions { BatchSize = request.BatchSize, ReturnTokens = request.IncludeTokens, MaxAspectRatio = request.MaxAspectRatio };
        long[]? coords = null;
        string input;
        TileEmbeddings result;
        if (files is null)
        {
            using var source = PixelFileInputs.Open(request.PixelFile!, encoder.Config);
            result = encoder.Embed(source, options, progress, cancellationToken);
            input = $"pixel_values of {Path.GetFileName(request.PixelFile)}";
        }
        else
        {
            coords = ImageFileInputs.ParseCoordinates(files);
            result = encoder.Embed(new FileTileSource(files), options, progress, cancellationToken);
            input = $"{files.Count} image files";
        }
        using (result)
        {
            Write(request.OutputPath, encoder, result, coords, new Dictionary<string, string> { ["input"] = input });
            return new TileEmbeddingSummary(request.OutputPath, result.Count, result.Dim, coords is not null, result.Tokens is not null, clock.Elapsed);
        }
    }

    /// <summary><see cref="Execute"/> on the thread pool.</summary>
    /// <param name="request">The model, the tiles and the output file.</param>
    /// <param name="progress">Tiles done so far, reported on the embedding thread; may be null.</param>
    /// <param name="cancellationToken">Stops within one block of the model; nothing is written then.</param>
    public static Task<TileEmbeddingSummary> ExecuteAsync(TileEmbeddingRequest request, IProgress<TileProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        Task.Run(() => Execute(request, progress, cancellationToken), cancellationToken);

    /// <summary>
    /// Writes <c>embeddings</c> [N, D] float32, <c>tokens</c> [N, prefix + patches, D] when present and <c>coords</c> [N, 2]
    /// int64 when given, with provenance (model hash and config, dtype, engine version) in <c>__metadata__</c>.
    /// </summary>
    internal static void Write(string path, TileEncoder encoder, TileEmbeddings result, long[]? coords, IReadOnlyDictionary<string, string>? extraMetadata = null)
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
            ["dtype"] = DeviceSelection.Name(encoder.Options.DType),
            ["device"] = encoder.Options.Device.ToString(),
            ["num_tiles"] = result.Count.ToString(System.Globalization.CultureInfo.InvariantCulture),
        };
        new Provenance { TileModelSha256 = encoder.WeightsSha256 }.AddTo(metadata);
        if (encoder.Source is not null)
            metadata["model"] = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(encoder.Source)));
        foreach (var (k, v) in extraMetadata ?? new Dictionary<string, string>())
            metadata[k] = v;
        SafeTensorsWriter.Write(path, tensors, metadata);
    }
}
