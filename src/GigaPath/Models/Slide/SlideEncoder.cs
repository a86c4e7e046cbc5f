using System.Security.Cryptography;
using System.Text;
using GigaPath.IO;
using GigaPath.Runtime;
using GigaPath.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GigaPath.Models.Slide;

/// <summary>
/// The Prov-GigaPath slide encoder: tile embeddings + level-0 coordinates of one slide → slide embeddings and
/// contextualised tile embeddings. Loads <c>model.safetensors</c> or the reference's <c>slide_encoder.pth</c> /
/// <c>model.pth</c> (state dict under "model"); a folder without config.json holds the published
/// gigapath_slide_enc12l768d.
/// </summary>
public sealed class SlideEncoder : IDisposable
{
    /// <summary>Weight files looked for in a model folder, in order.</summary>
    public static readonly IReadOnlyList<string> WeightFileNames = ["model.safetensors", "slide_encoder.pth", "model.pth"];

    private readonly LongNetViT _model;

    public SlideEncoderConfig Config => _model.Config;
    public SlideEncoderOptions Options { get; }

    /// <summary>
    /// SHA-256 (hex) of the weight file this encoder was loaded from; for <see cref="CreateRandom"/>, of its float32
    /// parameters (name, shape and bytes in state-dict order).
    /// </summary>
    public string WeightsSha256 { get; }

    /// <summary>The weight file loaded, or null for a random model.</summary>
    public string? WeightsPath { get; }

    public long ParameterCount => _model.parameters().Sum(p => p.numel());

    internal LongNetViT Model => _model;

    private SlideEncoder(LongNetViT model, SlideEncoderOptions options, string sha256, string? weightsPath)
    {
        _model = model;
        Options = options;
        WeightsSha256 = sha256;
        WeightsPath = weightsPath;
        _model.eval();
        using (torch.no_grad())
        {
            if (options.DType != ScalarType.Float32)
            {
                foreach (var linear in _model.modules().OfType<Linear>())
                    linear.to(options.DType);
            }
            _model.to(options.Device);
        }
    }

    /// <summary>
    /// Loads from a model folder (config.json optional, then model.safetensors, slide_encoder.pth or model.pth) or from
    /// a weight file (config.json read from its folder).
    /// </summary>
    public static SlideEncoder Load(string path, SlideEncoderOptions? options = null)
    {
        options ??= new SlideEncoderOptions();
        Validate(options);
        string weights;
        string dir;
        if (Directory.Exists(path))
        {
            dir = path;
            weights = WeightFileNames.Select(n => Path.Combine(path, n)).FirstOrDefault(File.Exists)
                ?? throw new GigaPathException($"{path}: no slide-encoder weights in this folder (looked for {string.Join(", ", WeightFileNames)})");
        }
        else if (File.Exists(path))
        {
            weights = path;
            dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        }
        else
        {
            throw new GigaPathException($"{path}: model folder or weight file not found");
        }

        var configPath = Path.Combine(dir, "config.json");
        bool hasConfig = File.Exists(configPath);
        var config = hasConfig ? SlideEncoderConfig.Load(configPath) : SlideEncoderConfig.ProvGigaPath;

        var model = new LongNetViT(config);
        try
        {
            using var source = TensorSources.Open(weights);
            StateDictLoader.Load(model, source, new LoadOptions { AllowUnexpected = options.AllowUnexpectedKeys });
        }
        catch (WeightFormatException e)
        {
            model.Dispose();
            var note = hasConfig
                ? $"(model configuration from {configPath}: {config})"
                : $"(no config.json in {dir}: assumed the published gigapath_slide_enc12l768d, {config})";
            throw new WeightFormatException($"{e.Message}\n  {note}", e);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return new SlideEncoder(model, options, FileSha256(weights), Path.GetFullPath(weights));
    }

    /// <summary>A randomly initialised encoder (deterministic for a seed): for tests, benchmarks and memory checks.</summary>
    public static SlideEncoder CreateRandom(SlideEncoderConfig config, long seed = 0, SlideEncoderOptions? options = null)
    {
        options ??= new SlideEncoderOptions();
        Validate(options);
        config.Validate();
        var model = new LongNetViT(config);
        using (torch.no_grad())
        using (torch.NewDisposeScope())
        {
            var generator = new Generator((ulong)seed);
            void Normal(Tensor t, double std) => t.copy_(torch.randn(t.shape, generator: generator).mul_(std));
            Normal(model.cls_token, 0.02);
            foreach (var linear in model.modules().OfType<Linear>())
            {
                Normal(linear.weight!, 0.02);
                linear.bias!.zero_();
            }
        }
        return new SlideEncoder(model, options, StateSha256(model), null);
    }

    /// <summary>Writes config.json and model.safetensors (float32) to <paramref name="dir"/>, atomically each.</summary>
    public void Save(string dir)
    {
        Directory.CreateDirectory(dir);
        using var scope = torch.NewDisposeScope();
        var tensors = _model.state_dict().Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.detach().cpu().to_type(ScalarType.Float32)));
        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors, new Dictionary<string, string>
        {
            ["format"] = "pt",
            ["model"] = "Prov-GigaPath slide encoder (LongNetViT)",
            ["engine"] = $"{EngineInfo.Name} {EngineInfo.Version}",
        });
        AtomicFile.WriteAllText(Path.Combine(dir, "config.json"), Config.ToJson() + "\n");
    }

    /// <summary>
    /// Encodes one slide from a tile-feature file's contents. Positions come from the file's own metadata: its
    /// tiling-resolution <c>coords_tiling</c> (as the whole-slide pipeline writes) when present, else its level-0
    /// <c>coords</c> divided by the level-0 tile size its attributes give (TRIDENT's <c>patch_size_level0</c>, else
    /// CLAM's <c>patch_size</c> × <c>downsample</c>), else by <paramref name="level0TileSize"/>; without any of these
    /// it throws. <see cref="SlideEncoding.Positions"/> records the rule used.
    /// </summary>
    public SlideEncoding Encode(TileFeatures tiles, bool allLayers = false, double? level0TileSize = null)
    {
        var positions = TilePositions.Resolve(tiles, Config.TileSize, level0TileSize);
        // Plain usings, not a dispose scope: the encoding's tensors are moved to the caller's scope and must outlive this call.
        using var x = torch.tensor(tiles.Features, [tiles.Count, tiles.Dim]);
        using var c = torch.tensor(positions.TilingCoords, [tiles.Count, 2]);
        var encoding = Encode(x, c, allLayers);
        encoding.Positions = positions.Rule;
        return encoding;
    }

    /// <summary>
    /// Encodes one slide. <paramref name="tileEmbeddings"/>: [N, in_chans] or [1, N, in_chans] (any float dtype);
    /// <paramref name="coords"/>: [N, 2] or [1, N, 2] level-0 pixel (x, y), float or integer. Tiles are used in the
    /// given order (it changes the result, as in the reference). Bad input throws <see cref="GigaPathException"/>.
    /// </summary>
    public SlideEncoding Encode(Tensor tileEmbeddings, Tensor coords, bool allLayers = false) =>
        Encode(tileEmbeddings, coords, allLayers, null);

    internal SlideEncoding Encode(Tensor tileEmbeddings, Tensor coords, bool allLayers, ActivationSink? sink)
    {
        var (embeddings, coords2) = SlideInputValidation.Check(tileEmbeddings, coords, Config);
        var cells = SlidePositions.ToGridCells(coords2, Config.TileSize, Config.SlideNgrids);
        foreach (var w in cells.Warnings) Options.OnWarning?.Invoke(w);

        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var h = EmbedTiles(embeddings, cells);
        var blocking = Options.Attention == SlideAttention.DenseBaseline ? Options.Blocking with { DenseBaseline = true } : Options.Blocking;
        var outputs = _model.Forward(h, allLayers, blocking, sink);
        h.Dispose();

        var encoderOut = outputs.EncoderOut;
        var last = Out(encoderOut);
        var result = new SlideEncoding
        {
            EmbedDefault = Out(_model.HeadCls(encoderOut)),
            EmbedGlobalPool = Out(_model.HeadPooled(encoderOut)),
            Layers = outputs.LayerCls?.Select(Out).ToList(),
            LayersPooled = outputs.LayerPooled?.Select(Out).ToList(),
            LastHiddenState = last,
            TileEmbeddingsCtx = last[0].narrow(0, 1, last.shape[1] - 1).MoveToOuterDisposeScope(),
            Warnings = cells.Warnings,
        };
        return result;
    }

    /// <summary>h_0 [1, N+1, D]; the positions and any device/dtype copy of the input are freed before the encoder runs.</summary>
    private Tensor EmbedTiles(Tensor embeddings, GridCells cells)
    {
        using var scope = torch.NewDisposeScope();
        var positions = SlidePositions.SinCosRows(cells.Gx, cells.Gy, Config.EmbedDim).to(Options.Device);
        // Always a fresh tensor from libtorch's allocator: a tensor wrapping a .NET array is only 8-byte aligned, and
        // MKL's GEMM then rounds some rows differently depending on where the array happens to lie in memory, so the
        // same slide would not give the same bytes twice.
        var x = embeddings.to(ScalarType.Float32, Options.Device, copy: true).unsqueeze(0);
        return _model.Embed(x, positions).MoveToOuterDisposeScope();
    }

    private static Tensor Out(Tensor t) => t.detach().to(ScalarType.Float32, CPU).contiguous().MoveToOuterDisposeScope();

    private static void Validate(SlideEncoderOptions options)
    {
        if (options.DType is not (ScalarType.Float32 or ScalarType.BFloat16 or ScalarType.Float16))
            throw new GigaPathException($"dtype {options.DType} is not supported (use float32, bfloat16 or float16)");
        options.Blocking.Validate();
        DeviceSelection.EnsureSupported(options.Device, options.DType, options.AllowSlowDType);
    }

    private static string FileSha256(string path)
    {
        using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 20);
        return Convert.ToHexStringLower(SHA256.HashData(stream));
    }

    private static string StateSha256(nn.Module model)
    {
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var (name, tensor) in model.state_dict())
        {
            using var scope = torch.NewDisposeScope();
            hash.AppendData(Encoding.UTF8.GetBytes($"{name}[{string.Join(",", tensor.shape)}]"));
            hash.AppendData(tensor.detach().cpu().to_type(ScalarType.Float32).contiguous().bytes);
        }
        return Convert.ToHexStringLower(hash.GetHashAndReset());
    }

    public void Dispose() => _model.Dispose();
}
