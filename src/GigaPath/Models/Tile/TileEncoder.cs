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
/// (<see cref="TileEncoderConfig.NumFeatures"/> wide), each tile computed independently of the others in its batch. Build one with <see cref="Load"/> (a model folder or weight file),
/// <see cref="CreateRandom"/> (a config in code), or inspect a config without allocating it with
/// <see cref="Describe"/>. Not thread-safe: use one encoder per thread, or serialise calls.
/// </summary>
public sealed class TileEncoder : IDisposable
{
    private readonly Lazy<string> _sha256;
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
    /// Embeds a batch of preprocessed tiles. <paramref name="pixelValues"/>: [B, 3, ImgSize, ImgSize] float32 (on any
    /// device), normalised as <see cref="Preprocessor"/> does. Returns float32 CPU tensors owned by the result (dispose
    /// it): the embeddings [B, NumFeatures] (<see cref="TileEncoderConfig.Pooling"/>) and, with
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
    /// Returns the embeddings [N, NumFeatures] float32 on the CPU, owned by the result (dispose it). A file that cannot be read
    /// throws <see cref="GigaPathException"/> naming it.
    /// </summary>
    public TileEmbeddings EmbedImages(IEnumerable<string> paths, int batchSize = 16)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(paths);
        if (batchSize <= 0)
            throw new GigaPathException($"batch size must be positive, got {batchSize}");
        var files = paths.ToList();
        if (files.Count == 0)
            throw new GigaPathException("no images to embed");
        var result = torch.empty([files.Count, Config.NumFeatures], ScalarType.Float32);
        try
        {
            for (int start = 0; start < files.Count; start += batchSize)
            {
                int count = Math.Min(batchSize, files.Count - start);
                using var batch = Preprocessor.PreprocessFiles(files, start, count);
                int offset = start;
                CheckFinite(batch, i => $"image {offset + i} ({files[offset + (int)i]})");
                using var embedded = EmbedChecked(batch, returnTokens: false);
                result.narrow(0, start, count).copy_(embedded.Embeddings);
            }
        }
        catch
        {
            result.Dispose();
            throw;
        }
        return new TileEmbeddings(result, null);
    }

    private TileEmbeddings EmbedChecked(Tensor pixelValues, bool returnTokens)
    {
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var input = pixelValues.to(Options.DType, Options.Device);
        var tokens = returnTokens ? Model.ForwardFeatures(input) : null;
        var embeddings = (tokens is null ? Model.forward(input) : Model.Pool(tokens)).to(ScalarType.Float32, CPU).contiguous();
        var tokensOut = tokens?.to(ScalarType.Float32, CPU).contiguous();
        CheckOutput(tokensOut ?? embeddings, pixelValues.shape[0]);
        return new TileEmbeddings(embeddings.MoveToOuterDisposeScope(), tokensOut?.MoveToOuterDisposeScope());
    }

    /// <summary>Refuses NaN or infinite pixels, naming the first bad tile with <paramref name="name"/>.</summary>
    private static void CheckFinite(Tensor pixels, Func<long, string> name)
    {
        if (FiniteValues.NonFiniteRows(pixels) is not { } bad) return;
        throw new GigaPathException($"{name(bad.First)} holds NaN or infinity ({bad.Count} of {pixels.shape[0]} tiles do); the input pixels must be finite");
    }

    /// <summary>
    /// Checks that <paramref name="pixelValues"/> is a non-empty [B, 3, ImgSize, ImgSize] float32 tensor, naming
    /// <paramref name="name"/> and its shape in the <see cref="GigaPathException"/> otherwise. Values are not read.
    /// </summary>
    public void ValidatePixels(Tensor pixelValues, string name)
    {
        var s = pixelValues.shape;
        var shape = "[" + string.Join(", ", s) + "]";
        var expected = $"[B, {Config.InChans}, {Config.ImgSize}, {Config.ImgSize}] float32";
        if (s.Length != 4)
            throw new GigaPathException($"{name}: expected {expected}, got rank {s.Length} {shape}");
        if (s[1] != Config.InChans)
            throw new GigaPathException($"{name}: expected {expected}, got {s[1]} channels {shape}");
        if (s[2] != Config.ImgSize || s[3] != Config.ImgSize)
            throw new GigaPathException($"{name}: expected {expected}, got {s[2]}x{s[3]} pixels {shape}; the model takes exactly {Config.ImgSize}x{Config.ImgSize} (preprocess: resize {Preprocessor.ResizeSize} {Preprocessor.Interpolation.ToString().ToLowerInvariant()}, center-crop {Config.ImgSize})");
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
        var metadata = new Dictionary<string, string>
        {
            ["format"] = "pt",
            ["engine"] = EngineInfo.Name,
            ["engine_version"] = EngineInfo.Version,
        };
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
