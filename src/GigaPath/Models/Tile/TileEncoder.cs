using System.Security.Cryptography;
using GigaPath.Pipeline;
using GigaPath.Runtime;
using GigaPath.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Models.Tile;

/// <summary>
/// The Prov-GigaPath tile encoder, ready to embed: a <see cref="VisionTransformer"/> with its weights on one device
/// in one dtype. Inputs are normalised pixel tensors [B, 3, 224, 224] float32; outputs are float32 CPU tensors.
/// Each tile is computed independently of the others in its batch.
/// </summary>
public sealed class TileEncoder : IDisposable
{
    private readonly Lazy<string> _sha256;
    private bool _disposed;

    public TileEncoderConfig Config { get; }
    public Device Device { get; }
    public ScalarType DType { get; }

    /// <summary>The model folder or weight file it was loaded from, or null for a model made in memory.</summary>
    public string? Source { get; }

    /// <summary>
    /// SHA-256 of the weight file (of the shards concatenated in name order for a sharded checkpoint); for a model
    /// made in memory, of its parameter bytes in state-dict order. Computed on first use.
    /// </summary>
    public string WeightsSha256 => _sha256.Value;

    internal VisionTransformer Model { get; }

    public long ParameterCount => Model.parameters().Sum(p => p.numel());

    private TileEncoder(VisionTransformer model, TileEncoderOptions options, string? source, Func<string> sha256)
    {
        Model = model;
        Config = model.Config;
        Device = options.Device;
        DType = options.DType;
        Source = source;
        _sha256 = new Lazy<string>(sha256);
        model.eval();
    }

    /// <summary>
    /// Loads <c>config.json</c> and the weights (<c>model.safetensors</c>, a sharded
    /// <c>model.safetensors.index.json</c> or <c>pytorch_model.bin</c>) from <paramref name="modelDir"/>, or from the
    /// folder of a weight file given directly. Every model key must be present with its exact shape.
    /// </summary>
    public static TileEncoder Load(string modelDir, TileEncoderOptions? options = null)
    {
        options ??= new TileEncoderOptions();
        CheckDevice(options);
        var files = TileModelFiles.Find(modelDir);
        var config = TileEncoderConfig.FromFile(files.ConfigPath);
        using var source = TensorSources.Open(files.WeightsPath);
        var hashed = source is ShardedSafeTensors sharded ? sharded.ShardFiles : [files.WeightsPath];
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
        return new TileEncoder(model, options, modelDir, () => FileHashing.Sha256(hashed));
    }

    /// <summary>A model with deterministic random weights (same seed, same weights), for benchmarks and demos.</summary>
    public static TileEncoder CreateRandom(TileEncoderConfig config, int seed, TileEncoderOptions? options = null)
    {
        options ??= new TileEncoderOptions();
        CheckDevice(options);
        var model = new VisionTransformer(config, options.Device, options.DType);
        RandomWeights.Fill(model, seed);
        TileEncoder? encoder = null;
        encoder = new TileEncoder(model, options, null, () => encoder!.HashParameters());
        return encoder;
    }

    private static void CheckDevice(TileEncoderOptions options)
    {
        if (options.DType is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16))
            throw new GigaPathException($"dtype {options.DType} is not supported for the tile encoder (use float32, bfloat16 or float16)");
        DeviceSelection.EnsureSupported(options.Device, options.DType, options.AllowSlowDType);
    }

    /// <summary>
    /// Embeds a batch of normalised tiles <paramref name="pixelValues"/> [B, 3, img, img] float32. Returns the CLS
    /// embeddings [B, D] and, with <paramref name="returnTokens"/>, all final-norm tokens [B, 1 + patches, D].
    /// </summary>
    public TileEmbeddings Embed(Tensor pixelValues, bool returnTokens = false)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ValidatePixels(pixelValues, "pixel_values");
        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var input = pixelValues.to(DType, Device);
        var tokens = returnTokens ? Model.ForwardFeatures(input) : null;
        var embeddings = (tokens is null ? Model.forward(input) : tokens.select(1, 0)).to(ScalarType.Float32, CPU).contiguous();
        var tokensOut = tokens?.to(ScalarType.Float32, CPU).contiguous();
        return new TileEmbeddings(embeddings.MoveToOuterDisposeScope(), tokensOut?.MoveToOuterDisposeScope());
    }

    /// <summary>
    /// Decodes, preprocesses (the transform of this model's config: resize, centre crop, mean/std) and embeds the
    /// image files <paramref name="imagePaths"/> (PNG/JPEG/TIFF), <paramref name="batchSize"/> at a time. Returns the
    /// CLS embeddings [N, D] float32 on the CPU in input order, owned by the caller.
    /// </summary>
    public TileEmbeddings EmbedImages(IEnumerable<string> imagePaths, int batchSize = 32)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        ArgumentNullException.ThrowIfNull(imagePaths);
        if (batchSize <= 0) throw new GigaPathException($"batch size must be positive, got {batchSize}");
        var inputs = new ImageFileInputs(imagePaths.ToList(), Config);
        using var scope = torch.NewDisposeScope();
        var parts = new List<Tensor>();
        for (int start = 0; start < inputs.Count; start += batchSize)
        {
            using var pixels = inputs.ReadBatch(start, Math.Min(batchSize, inputs.Count - start));
            using var batch = Embed(pixels);
            parts.Add(batch.Embeddings.clone());
        }
        var embeddings = parts.Count == 1 ? parts[0] : torch.cat(parts, 0);
        return new TileEmbeddings(embeddings.MoveToOuterDisposeScope(), null);
    }

    /// <summary>Checks rank, dtype, channels and size, naming <paramref name="name"/> and its shape on failure.</summary>
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
            throw new GigaPathException($"{name}: expected {expected}, got {s[2]}x{s[3]} pixels {shape}; the model takes exactly {Config.ImgSize}x{Config.ImgSize} (preprocess: resize 256, center-crop 224)");
        if (s[0] == 0)
            throw new GigaPathException($"{name}: holds no tiles {shape}");
        if (pixelValues.dtype != ScalarType.Float32)
            throw new GigaPathException($"{name}: expected {expected}, got dtype {pixelValues.dtype} {shape}");
    }

    /// <summary>Writes <c>config.json</c> and <c>model.safetensors</c> into <paramref name="dir"/>, each atomically.</summary>
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

    private string HashParameters()
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (_, p) in Model.state_dict())
        {
            using var scope = torch.NewDisposeScope();
            hash.AppendData(p.detach().cpu().contiguous().bytes);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        Model.Dispose();
    }
}
