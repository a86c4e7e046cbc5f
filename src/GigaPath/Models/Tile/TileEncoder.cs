using GigaPath.Pipeline;
using GigaPath.Imaging;
using GigaPath.Runtime;
using GigaPath.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Models.Tile;

/// <summary>
/// A tile encoder ready to embed: Prov-GigaPath (a timm ViT-giant, 1.1 billion parameters) or another named ViT
/// pathology encoder (<see cref="TileEncoderKind"/>: H-optimus-0/1, H0-mini, UNI, UNI2-h, Virchow, Virchow2), weights on
/// one device in one dtype (<see cref="Options"/>). It turns RGB tiles into embeddings
/// (<see cref="TileEncoderConfig.OutputDim"/> wide), each tile computed independently of the others in its batch. Build one with <see cref="Load"/> (a model folder or weight file),
/// <see cref="CreateRandom"/> (a config in code), or inspect a config without allocating it with
/// <see cref="Describe"/>. Embed with <see cref="EmbedAsync"/> or <see cref="EmbedBatchesAsync"/> (any
/// <see cref="TileSource"/>; cancellation, progress, embeddings as floats), or with <see cref="Embed(Tensor, bool)"/>
/// on pixel tensors.
/// <para>Thread safety: every member may be called from several threads at once. Forward passes are serialised (one
/// at a time per encoder, each using all cores through libtorch); reading and preprocessing of concurrent calls
/// overlap. <see cref="Dispose"/> must not race with other calls.</para>
/// </summary>
public sealed class TileEncoder : IDisposable
{
    private readonly Lazy<string> _sha256;
    private readonly object _forward = new();
    private bool _disposed;

    /// <summary>The model's shape and its preprocessing (mean/std).</summary>
    public TileEncoderConfig Config { get; }

    /// <summary>Device, dtype and key strictness it was built with.</summary>
    public EncoderOptions Options { get; }

    /// <summary>
    /// The input transform for these weights (from <see cref="Config"/>: resize, center crop, mean/std); what
    /// <see cref="EmbedImages"/>, the CLI, the server and the pipeline all use.
    /// </summary>
    public TilePreprocessor Preprocessor { get; }

    /// <summary>The model folder or weight file it was loaded from (full path), or null for a model made in memory.</summary>
    public string? Source { get; }

    /// <summary>The weight file read (full path; the index of a sharded checkpoint), or null for a model made in memory.</summary>
    public string? WeightsPath { get; }

    /// <summary>
    /// SHA-256 (lower-case hex) of the weight file (of the shards concatenated in name order for a sharded
    /// checkpoint); for a model made in memory, of its parameters (name, shape and float32 bytes in state-dict order).
    /// Computed on first use (hashing the full-size model's 4.5 GB takes seconds).
    /// </summary>
    public string WeightsSha256 => _sha256.Value;

    internal VisionTransformer Model { get; }

    /// <summary>Number of scalar parameters (1,134,953,984 for Prov-GigaPath).</summary>
    public long ParameterCount => Model.parameters().Sum(p => p.numel());

    private TileEncoder(VisionTransformer model, EncoderOptions options, string? source, string? weightsPath, Func<string> sha256)
    {
        Model = model;
        Config = model.Config;
        Options = options;
        Preprocessor = Config.CreatePreprocessor();
        Source = source;
        WeightsPath = weightsPath;
        _sha256 = new Lazy<string>(sha256);
        model.eval();
    }

    /// <summary>
    /// Loads a tile encoder from <paramref name="path"/>: a model folder holding the timm <c>config.json</c> and one
    /// weight file (<c>model.safetensors</c>, a sharded <c>model.safetensors.index.json</c> or
    /// <c>pytorch_model.bin</c>), or a weight file (<c>.safetensors</c>, <c>.bin</c>, <c>.pth</c>) whose folder holds
    /// the config.json. Every model tensor must be present with its exact shape; problems throw
    /// <see cref="GigaPathException"/> (<see cref="WeightFormatException"/> for the weights) naming the file.
    /// Dispose the encoder to free its weights.
    /// </summary>
    /// <param name="path">Model folder or weight file.</param>
    /// <param name="options">Device, dtype and key strictness (a <see cref="TileEncoderOptions"/> also names the
    /// encoder); null for float32 on the CPU and the one encoder the config fits.</param>
    public static TileEncoder Load(string path, EncoderOptions? options = null)
    {
        options ??= new EncoderOptions();
        DeviceSelection.EnsureSupported(options.Device, options.DType, options.AllowSlowDType);
        var files = ModelFiles.Find(path, "tile encoder");
        var config = TileEncoderConfig.Load(files.ConfigPath
            ?? throw new GigaPathException($"{path}: no config.json beside the weights (a tile encoder folder holds the timm config.json and model.safetensors)"),
            (options as TileEncoderOptions)?.Encoder);
        using var source = TensorSources.Open(files.WeightsPath);
        var hashed = files.HashedFiles(source);
        var model = new VisionTransformer(config, options.Device, options.DType);
        try
        {
            StateDictLoader.Load(model, source, new LoadOptions { AllowUnexpected = options.AllowUnexpectedKeys });
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return new TileEncoder(model, options, Path.GetFullPath(path), files.WeightsPath, () => FileHashing.Sha256(hashed));
    }

    /// <summary>
    /// <see cref="Load"/> on the thread pool: a web app's request thread is not blocked for the seconds a full-size
    /// checkpoint takes. Cancellation is checked before the weights are read and after; a model loaded after
    /// cancellation is disposed.
    /// </summary>
    /// <param name="path">Model folder or weight file.</param>
    /// <param name="options">As for <see cref="Load"/>.</param>
    /// <param name="cancellationToken">Cancels the load.</param>
    public static async Task<TileEncoder> LoadAsync(string path, EncoderOptions? options = null, CancellationToken cancellationToken = default)
    {
        cancellationToken.ThrowIfCancellationRequested();
        var encoder = await Task.Run(() => Load(path, options), cancellationToken).ConfigureAwait(false);
        if (cancellationToken.IsCancellationRequested)
        {
            encoder.Dispose();
            cancellationToken.ThrowIfCancellationRequested();
        }
        return encoder;
    }

    /// <summary>
    /// A model built from <paramref name="config"/> with deterministic random weights (same config and seed, same
    /// weights on every machine), for tests, benchmarks and demos. Its embeddings mean nothing.
    /// </summary>
    public static TileEncoder CreateRandom(TileEncoderConfig config, long seed = 0, EncoderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        options ??= new EncoderOptions();
        DeviceSelection.EnsureSupported(options.Device, options.DType, options.AllowSlowDType);
        var model = new VisionTransformer(config.Validate(), options.Device, options.DType);
        RandomWeights.Fill(model, seed);
        return new TileEncoder(model, options, null, null, () => FileHashing.ParameterSha256(model));
    }

    /// <summary>
    /// The parameters (checkpoint names, shapes, count) of the model <paramref name="config"/> describes, built on
    /// the meta device: nothing is allocated, so the full-size <see cref="TileEncoderConfig.ProvGigaPath"/> can be
    /// inspected anywhere.
    /// </summary>
    public static ModelDescription Describe(TileEncoderConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        return ModelDescription.Of(config.Describe(), () => new VisionTransformer(config, META));
    }

    /// <summary>
    /// Embeds a batch of preprocessed tiles. <paramref name="pixelValues"/>: [B, 3, ImageSize, ImageSize] float32 (on any
    /// device), normalised as <see cref="Preprocessor"/> does. Returns float32 CPU tensors owned by the result (dispose
    /// it): the embeddings [B, OutputDim] (<see cref="TileEncoderConfig.Pooling"/>) and, with
    /// <paramref name="returnTokens"/>, all final-norm tokens [B, prefix + patches, D] (class token, registers, patches). Wrong shapes, dtypes and non-finite values throw <see cref="GigaPathException"/> naming the
    /// first bad tile.
    /// </summary>
    public TileEmbeddings Embed(Tensor pixelValues, bool returnTokens = false)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(pixelValues);
        ValidatePixels(pixelValues, "pixel_values");
        CheckFinite(pixelValues, i => $"pixel_values: tile {i}");
        return EmbedChecked(pixelValues, returnTokens);
    }

    /// <summary>
    /// Decodes, preprocesses (<see cref="Preprocessor"/>) and embeds image files (PNG, JPEG, TIFF; any size, resized
    /// and center-cropped like the reference), in input order, <paramref name="batchSize"/> images per forward pass.
    /// Returns the embeddings [N, OutputDim] float32 on the CPU, owned by the result (dispose it). A file that cannot be read
    /// throws <see cref="GigaPathException"/> naming it.
    /// </summary>
    public TileEmbeddings EmbedImages(IEnumerable<string> paths, int batchSize = 16)
    {
        ArgumentNullException.ThrowIfNull(paths);
        return Embed(TileSource.FromFiles(paths), new TileEmbeddingOptions { BatchSize = batchSize });
    }

    /// <summary>
    /// Embeds every tile of <paramref name="source"/> in order: tiles are decoded and preprocessed (this encoder's
    /// <see cref="Preprocessor"/>) by reader tasks ahead of the model, embedded <see cref="TileEmbeddingOptions.BatchSize"/>
    /// at a time, and <paramref name="progress"/> hears after every batch. Returns float32 CPU tensors owned by the
    /// result (dispose it; <see cref="TileEmbeddings.ToArrays"/> gives plain floats). A tile that cannot be read, or
    /// whose pixels or embedding are not finite, throws <see cref="GigaPathException"/> naming it
    /// (<see cref="TileSource.Describe"/>); cancellation is checked between batches and between the model's blocks.
    /// </summary>
    /// <param name="source">The tiles.</param>
    /// <param name="options">Batching and read-ahead (results do not depend on them), tokens; null for the defaults.</param>
    /// <param name="progress">Told the tiles done after each batch.</param>
    /// <param name="cancellationToken">Stops the run within one block of the model.</param>
    public TileEmbeddings Embed(TileSource source, TileEmbeddingOptions? options = null, IProgress<TileProgress>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(source);
        options ??= new TileEmbeddingOptions();
        using var loader = new TileLoader(this, source, options, cancellationToken);
        var embeddings = torch.empty([source.Count, Config.OutputDim], ScalarType.Float32);
        Tensor? tokens = null;
        try
        {
            if (options.ReturnTokens)
                tokens = torch.empty([source.Count, Config.SequenceLength, Config.EmbedDim], ScalarType.Float32);
            while (loader.Next() is { } next)
            {
                using var result = next.Result;
                embeddings.narrow(0, next.Start, result.Count).copy_(result.Embeddings);
                tokens?.narrow(0, next.Start, result.Count).copy_(result.Tokens!);
                progress?.Report(new TileProgress(next.Start + result.Count, source.Count, loader.Elapsed));
            }
        }
        catch
        {
            embeddings.Dispose();
            tokens?.Dispose();
            throw;
        }
        return new TileEmbeddings(embeddings, tokens);
    }

    /// <summary><see cref="Embed(TileSource, TileEmbeddingOptions?, IProgress{TileProgress}?, CancellationToken)"/> on the thread pool.</summary>
    /// <param name="source">The tiles.</param>
    /// <param name="options">Batching and read-ahead, tokens; null for the defaults.</param>
    /// <param name="progress">Told the tiles done after each batch.</param>
    /// <param name="cancellationToken">Stops the run within one block of the model.</param>
    public Task<TileEmbeddings> EmbedAsync(TileSource source, TileEmbeddingOptions? options = null, IProgress<TileProgress>? progress = null,
        CancellationToken cancellationToken = default) =>
        Task.Run(() => Embed(source, options, progress, cancellationToken), cancellationToken);

    /// <summary>
    /// The embeddings of <paramref name="source"/> one batch at a time, as plain floats, while the next batch is read and
    /// embedded: for cohort-size inputs, whose embeddings are written or reduced as they come rather than held.
    /// Stopping the enumeration stops the readers.
    /// </summary>
    /// <param name="source">The tiles.</param>
    /// <param name="options">Batching and read-ahead; <see cref="TileEmbeddingOptions.ReturnTokens"/> is not used here.</param>
    /// <param name="cancellationToken">Stops the run within one block of the model.</param>
    public async IAsyncEnumerable<TileEmbeddingBatch> EmbedBatchesAsync(TileSource source, TileEmbeddingOptions? options = null,
        [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(source);
        options = (options ?? new TileEmbeddingOptions()) with { ReturnTokens = false };
        using var loader = new TileLoader(this, source, options, cancellationToken);
        while (await Task.Run(loader.Next, cancellationToken).ConfigureAwait(false) is { } next)
        {
            using var result = next.Result;
            yield return new TileEmbeddingBatch(next.Start, result.Count, Config.OutputDim, result.Embeddings.data<float>().ToArray(),
                loader.Elapsed, source.Count);
        }
    }

    /// <summary>The embedding of one encoded image (PNG, JPEG, TIFF bytes), as floats: decode, this encoder's transform, forward.</summary>
    /// <param name="image">The encoded image.</param>
    /// <param name="cancellationToken">Stops the forward within one block of the model.</param>
    public async Task<float[]> EmbedImageAsync(ReadOnlyMemory<byte> image, CancellationToken cancellationToken = default)
    {
        using var result = await EmbedAsync(TileSource.FromImages([image]), new TileEmbeddingOptions { BatchSize = 1, Readers = 1 },
            cancellationToken: cancellationToken).ConfigureAwait(false);
        return result.ToArrays()[0];
    }

    /// <summary>The embedding of one encoded image read from <paramref name="image"/> (to its end), as floats.</summary>
    /// <param name="image">A stream holding a PNG, JPEG or TIFF.</param>
    /// <param name="cancellationToken">Stops the read and the forward.</param>
    public async Task<float[]> EmbedImageAsync(Stream image, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(image);
        using var copy = new MemoryStream();
        await image.CopyToAsync(copy, cancellationToken).ConfigureAwait(false);
        return await EmbedImageAsync(copy.ToArray(), cancellationToken).ConfigureAwait(false);
    }

    /// <summary>
    /// Embeds every tile of <paramref name="tiles"/> in one forward pass, on the calling thread: each tile is read and
    /// preprocessed (<see cref="Preprocessor"/>; pixels from <see cref="TileSource.FromPreprocessed"/> are taken as
    /// they are), the tiles are packed into one batch and embedded. This is the step the loader behind
    /// <see cref="Embed(TileSource, TileEmbeddingOptions?, IProgress{TileProgress}?, CancellationToken)"/> runs for each
    /// of its batches; call it to batch tiles yourself (a server gathering the tiles of several requests). A tile that
    /// cannot be read, or whose pixels or embedding are not finite, throws <see cref="GigaPathException"/> naming it
    /// (<see cref="TileSource.Describe"/>). Returns float32 CPU tensors owned by the result (dispose it).
    /// </summary>
    /// <param name="tiles">The batch's tiles; keep the count to what one forward pass should take.</param>
    /// <param name="returnTokens">Whether to return all final-norm tokens too.</param>
    /// <param name="cancellationToken">Checked between tiles and before each block of the model.</param>
    /// <exception cref="OperationCanceledException">Cancelled; nothing is returned.</exception>
    public TileEmbeddings EmbedBatch(TileSource tiles, bool returnTokens = false, CancellationToken cancellationToken = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(tiles);
        if (tiles.Count == 0)
            throw new GigaPathException("no tiles to embed");
        var pixels = new float[tiles.Count][];
        for (int i = 0; i < pixels.Length; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            pixels[i] = tiles.Read(i, Preprocessor);
        }
        return EmbedPreprocessed(pixels, tiles, 0, Preprocessor, returnTokens, cancellationToken);
    }

    /// <summary>
    /// The pack-and-encode step of <see cref="EmbedBatch"/> and of the loader: tiles <paramref name="start"/>… of
    /// <paramref name="source"/>, already read, packed into one batch and embedded; bad tiles are named by the source.
    /// </summary>
    internal TileEmbeddings EmbedPreprocessed(IReadOnlyList<float[]> pixels, TileSource source, int start, TilePreprocessor preprocessor,
        bool returnTokens, CancellationToken cancellation)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        using var batch = preprocessor.ToBatch(pixels);
        Func<long, string> name = row => source.Describe(start + (int)row);
        CheckFinite(batch, name);
        try
        {
            return EmbedChecked(batch, returnTokens, cancellation);
        }
        catch (NonFiniteOutputException e)
        {
            throw e.Naming(name(e.Row));
        }
    }

    private TileEmbeddings EmbedChecked(Tensor pixelValues, bool returnTokens, CancellationToken cancellation = default)
    {
        lock (_forward)
        {
            using var noGrad = torch.no_grad();
            using var scope = torch.NewDisposeScope();
            var input = pixelValues.to(Options.DType, Options.Device);
            var tokens = returnTokens ? Model.ForwardFeatures(input, null, cancellation) : null;
            var embeddings = (tokens is null ? Model.Embed(input, cancellation) : Model.Pool(tokens)).to(ScalarType.Float32, CPU).contiguous();
            var tokensOut = tokens?.to(ScalarType.Float32, CPU).contiguous();
            CheckOutput(tokensOut ?? embeddings, pixelValues.shape[0]);
            return new TileEmbeddings(embeddings.MoveToOuterDisposeScope(), tokensOut?.MoveToOuterDisposeScope());
        }
    }

    /// <summary>Refuses NaN or infinite pixels, naming the first bad tile with <paramref name="name"/>.</summary>
    private static void CheckFinite(Tensor pixels, Func<long, string> name)
    {
        if (FiniteValues.NonFiniteRows(pixels) is not { } bad) return;
        throw new GigaPathException($"{name(bad.First)} holds NaN or infinity ({bad.Count} of {pixels.shape[0]} tiles do); the input pixels must be finite");
    }

    /// <summary>
    /// Checks that <paramref name="pixelValues"/> is a non-empty [B, 3, ImageSize, ImageSize] float32 tensor, naming
    /// <paramref name="name"/> and its shape in the <see cref="GigaPathException"/> otherwise. Values are not read.
    /// </summary>
    public void ValidatePixels(Tensor pixelValues, string name)
    {
        var s = pixelValues.shape;
        var shape = "[" + string.Join(", ", s) + "]";
        var expected = $"[B, {Config.InputChannels}, {Config.ImageSize}, {Config.ImageSize}] float32";
        if (s.Length != 4)
            throw new GigaPathException($"{name}: expected {expected}, got rank {s.Length} {shape}");
        if (s[1] != Config.InputChannels)
            throw new GigaPathException($"{name}: expected {expected}, got {s[1]} channels {shape}");
        if (s[2] != Config.ImageSize || s[3] != Config.ImageSize)
            throw new GigaPathException($"{name}: expected {expected}, got {s[2]}x{s[3]} pixels {shape}; the model takes exactly {Config.ImageSize}x{Config.ImageSize} (preprocess: resize {Preprocessor.ResizeSize} {Preprocessor.Interpolation.ToString().ToLowerInvariant()}, center-crop {Config.ImageSize})");
        if (s[0] == 0)
            throw new GigaPathException($"{name}: holds no tiles {shape}");
        if (pixelValues.dtype != ScalarType.Float32)
            throw new GigaPathException($"{name}: expected {expected}, got dtype {pixelValues.dtype} {shape}");
    }

    /// <summary>
    /// Finite pixels in, NaN or infinity out: the weights are broken or the dtype overflowed. An error rather than an
    /// output file of NaN embeddings that would poison everything downstream.
    /// </summary>
    private void CheckOutput(Tensor output, long batch)
    {
        if (FiniteValues.NonFiniteRows(output) is not { } bad) return;
        throw new NonFiniteOutputException($"tile {bad.First} of the batch",
            $"the tile encoder's embedding holds NaN or infinity although the input pixels are finite ({bad.Count} of {batch} tiles in the batch): " +
            $"the model's weights ({Source ?? "in memory"}) hold NaN or infinity" + DeviceSelection.OverflowHint(Options.DType), bad.First);
    }

    /// <summary>
    /// Writes <c>config.json</c> and <c>model.safetensors</c> (in the model's dtype) into <paramref name="dir"/>,
    /// each atomically; <see cref="Load"/> reads the folder back.
    /// </summary>
    public void Save(string dir)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Directory.CreateDirectory(dir);
        var metadata = Provenance.Current.AddTo(new Dictionary<string, string> { ["format"] = "pt" });
        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), Model.state_dict(), metadata);
        AtomicFile.WriteAllText(Path.Combine(dir, "config.json"), Config.ToJson());
    }

    /// <summary>Frees the weights.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Model.Dispose();
    }
}
