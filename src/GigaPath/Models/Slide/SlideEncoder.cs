using GigaPath.Runtime;
using GigaPath.Weights;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GigaPath.Models.Slide;

/// <summary>
/// The Prov-GigaPath slide encoder (LongNetViT, 86 million parameters): the tile embeddings and coordinates of one slide
/// → a slide embedding and contextualised tile embeddings. Build one with <see cref="Load"/> (a model folder or weight
/// file), <see cref="CreateRandom"/> (a config in code), or inspect a config without allocating it with
/// <see cref="Describe"/>. A folder without config.json holds the published gigapath_slide_enc12l768d.
/// <para>Thread safety: the embedding methods may be called from several threads at once; forward passes are
/// serialised per encoder (each uses all cores). <see cref="Dispose"/> must not race with other calls; fine-tuning
/// (the training heads) owns its encoder.</para>
/// </summary>
public sealed class SlideEncoder : IDisposable
{
    private readonly LongNetViT _model;
    private readonly Lazy<string> _sha256;
    private readonly object _forward = new();
    private bool _disposed;

    /// <summary>The model's shape.</summary>
    public SlideEncoderConfig Config => _model.Config;

    /// <summary>Device, dtype, key strictness and attention settings it was built with.</summary>
    public SlideEncoderOptions Options { get; }

    /// <summary>The model folder or weight file it was loaded from (full path), or null for a model made in memory.</summary>
    public string? Source { get; }

    /// <summary>The weight file read (full path), or null for a model made in memory.</summary>
    public string? WeightsPath { get; }

    /// <summary>
    /// SHA-256 (lower-case hex) of the weight file; for a model made in memory, of its parameters (name, shape and
    /// float32 bytes in state-dict order). Computed on first use.
    /// </summary>
    public string WeightsSha256 => _sha256.Value;

    /// <summary>Number of scalar parameters (86,330,880 for Prov-GigaPath).</summary>
    public long ParameterCount => _model.parameters().Sum(p => p.numel());

    internal LongNetViT Model => _model;

    private SlideEncoder(LongNetViT model, SlideEncoderOptions options, string? source, string? weightsPath, Func<string> sha256)
    {
        _model = model;
        Options = options;
        Source = source;
        WeightsPath = weightsPath;
        _sha256 = new Lazy<string>(sha256);
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
    /// The configuration <see cref="Load"/> would use for <paramref name="path"/>, read without the weights: what a
    /// caller checks its tile features against (<c>in_chans</c>) before reading them.
    /// </summary>
    /// <param name="path">Model folder or weight file, as for <see cref="Load"/>.</param>
    public static SlideEncoderConfig ReadConfig(string path) => ConfigOf(ModelFiles.Find(path, "slide encoder"));

    private static SlideEncoderConfig ConfigOf(ModelFiles files) =>
        files.ConfigPath is { } configPath ? SlideEncoderConfig.Load(configPath) : SlideEncoderConfig.ProvGigaPath;

    /// <summary>
    /// Loads a slide encoder from <paramref name="path"/>: a model folder (config.json optional, then one weight file:
    /// <c>model.safetensors</c>, <c>pytorch_model.bin</c>, <c>slide_encoder.pth</c> or <c>model.pth</c>), or a weight
    /// file (<c>.safetensors</c>, <c>.bin</c>, <c>.pth</c>; config.json read from its folder when there is one). The
    /// reference's checkpoints (state dict under "model") load as they are. Every model tensor must be present with
    /// its exact shape; problems throw <see cref="GigaPathException"/> (<see cref="WeightFormatException"/> for the
    /// weights) naming the file. Dispose the encoder to free its weights.
    /// </summary>
    /// <param name="path">Model folder or weight file.</param>
    /// <param name="options">Device, dtype and key strictness (a <see cref="SlideEncoderOptions"/> also sets the
    /// attention); null for float32 on the CPU.</param>
    public static SlideEncoder Load(string path, EncoderOptions? options = null)
    {
        var slideOptions = SlideEncoderOptions.From(options);
        Validate(slideOptions);
        var files = ModelFiles.Find(path, "slide encoder");
        var config = ConfigOf(files);

        var model = new LongNetViT(config);
        try
        {
            using var source = TensorSources.Open(files.WeightsPath);
            StateDictLoader.Load(model, source, new LoadOptions { AllowUnexpected = slideOptions.AllowUnexpectedKeys });
        }
        catch (WeightFormatException e)
        {
            model.Dispose();
            var note = files.ConfigPath is { } c
                ? $"(model configuration from {c}: {config})"
                : $"(no config.json in {Path.GetDirectoryName(files.WeightsPath)}: assumed the published gigapath_slide_enc12l768d, {config})";
            throw new WeightFormatException($"{e.Message}\n  {note}", e);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return new SlideEncoder(model, slideOptions, Path.GetFullPath(path), files.WeightsPath, () => FileHashing.Sha256(files.WeightsPath));
    }

    /// <summary>
    /// A model built from <paramref name="config"/> with deterministic random weights (same config and seed, same
    /// weights on every machine), for tests, benchmarks and memory checks. Its embeddings mean nothing.
    /// </summary>
    public static SlideEncoder CreateRandom(SlideEncoderConfig config, long seed = 0, EncoderOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(config);
        var slideOptions = SlideEncoderOptions.From(options);
        Validate(slideOptions);
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
        // Hashed now, in float32 on the CPU, before the constructor moves and converts the weights.
        var sha256 = FileHashing.ParameterSha256(model);
        return new SlideEncoder(model, slideOptions, null, null, () => sha256);
    }

    /// <summary>
    /// The parameters (checkpoint names, shapes, count) of the model <paramref name="config"/> describes, built on
    /// the meta device: nothing is allocated.
    /// </summary>
    public static ModelDescription Describe(SlideEncoderConfig config)
    {
        ArgumentNullException.ThrowIfNull(config);
        config.Validate();
        return ModelDescription.Of(config.ToString(), () => new LongNetViT(config));
    }

    /// <summary>
    /// Writes <c>config.json</c> and <c>model.safetensors</c> (float32) into <paramref name="dir"/>, each atomically;
    /// <see cref="Load"/> reads the folder back.
    /// </summary>
    public void Save(string dir)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        Directory.CreateDirectory(dir);
        using var scope = torch.NewDisposeScope();
        var tensors = _model.state_dict().Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.detach().cpu().to_type(ScalarType.Float32)));
        SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors, Provenance.Current.AddTo(new Dictionary<string, string>
        {
            ["format"] = "pt",
            ["model"] = "Prov-GigaPath slide encoder (LongNetViT)",
        }));
        AtomicFile.WriteAllText(Path.Combine(dir, "config.json"), Config.ToJson() + "\n");
    }

    /// <summary>The tile encoder whose embeddings Prov-GigaPath's slide encoder was trained on (<see cref="Tile.TileEncoderKind.Name"/>).</summary>
    public const string TileEncoderName = "gigapath";

    /// <summary>
    /// Refuses tile features from <paramref name="source"/> made by another tile encoder than <see cref="TileEncoderName"/>
    /// (when known): H-optimus-0 and UNI2-h also make 1536-wide embeddings, which the slide encoder would take silently
    /// and turn into meaningless slide embeddings. (The width is checked with the input itself.)
    /// </summary>
    internal static void CheckTileEncoder(string? encoder, string source)
    {
        if (encoder is not null && !string.Equals(encoder, TileEncoderName, StringComparison.OrdinalIgnoreCase))
            throw new GigaPathException($"{source}: tile features of the {encoder} tile encoder; the Prov-GigaPath slide encoder was trained on " +
                $"Prov-GigaPath ({TileEncoderName}) tile embeddings and takes those only");
    }

    /// <summary>
    /// Embeds one slide from a tile-feature file's contents (<c>TileFeatureFile.Read</c>). Positions come from the
    /// file's own metadata: its tiling-resolution <c>coords_tiling</c> (as the whole-slide pipeline writes) when
    /// present, else its level-0 <c>coords</c> divided by the level-0 tile size its attributes give (TRIDENT's
    /// <c>patch_size_level0</c>, else CLAM's <c>patch_size</c> × <c>downsample</c>), else by
    /// <paramref name="level0TileSize"/> (level-0 pixels per tile); without any of these it throws.
    /// <see cref="SlideEmbeddings.Placement"/> records the rule used. See <see cref="Embed(Tensor, Tensor, bool)"/>.
    /// </summary>
    public SlideEmbeddings Embed(TileFeatures tiles, bool allLayers = false, double? level0TileSize = null) =>
        Embed(tiles, allLayers, level0TileSize, CancellationToken.None);

    /// <summary>
    /// <see cref="Embed(TileFeatures, bool, double?)"/> on the thread pool, stopping within one of the model's layers
    /// when <paramref name="cancellationToken"/> is cancelled (a 100k-tile slide takes minutes on a CPU).
    /// </summary>
    /// <param name="tiles">A tile-feature file's contents.</param>
    /// <param name="allLayers">Also return every layer's embeddings.</param>
    /// <param name="level0TileSize">Level-0 pixels per tile, for files whose attributes do not say it.</param>
    /// <param name="cancellationToken">Stops the forward before its next layer.</param>
    public Task<SlideEmbeddings> EmbedAsync(TileFeatures tiles, bool allLayers = false, double? level0TileSize = null,
        CancellationToken cancellationToken = default) =>
        Task.Run(() => Embed(tiles, allLayers, level0TileSize, cancellationToken), cancellationToken);

    internal SlideEmbeddings Embed(TileFeatures tiles, bool allLayers, double? level0TileSize, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(tiles);
        CheckTileEncoder(tiles.TileEncoder, tiles.Source);
        tiles.RequireUsable();
        var positions = TilePositions.Resolve(tiles, Config.TileSize, level0TileSize);
        // Plain usings, not a dispose scope: the embeddings' tensors are moved to the caller's scope and must outlive this call.
        // The features as they are, not a copy: the forward copies them into aligned tensors a row chunk at a time.
        using var flat = torch.from_array(tiles.Features);
        using var x = flat.view(tiles.Count, tiles.Dim);
        using var c = torch.tensor(positions.TilingCoords, [tiles.Count, 2]);
        var embeddings = Embed(x, c, allLayers, null, cancellation);
        embeddings.Placement = positions.Placement;
        return embeddings;
    }

    /// <summary>
    /// Embeds one slide. <paramref name="tileEmbeddings"/>: [N, InputChannels] or [1, N, InputChannels] (any float dtype, any
    /// device; the tile encoder's outputs); <paramref name="coords"/>: [N, 2] or [1, N, 2] pixel (x, y) of each tile's
    /// corner, float or integer (the grid cell is coords / <see cref="SlideEncoderConfig.TileSize"/>). Tiles are used
    /// in the given order (it changes the result, as in the reference). With <paramref name="allLayers"/> the
    /// per-layer embeddings are returned too. Returns float32 CPU tensors owned by the result (dispose it). Bad input
    /// (shapes, counts, NaN or infinite features) throws <see cref="GigaPathException"/> naming the first bad tile.
    /// </summary>
    public SlideEmbeddings Embed(Tensor tileEmbeddings, Tensor coords, bool allLayers = false)
    {
        ArgumentNullException.ThrowIfNull(tileEmbeddings);
        ArgumentNullException.ThrowIfNull(coords);
        return Embed(tileEmbeddings, coords, allLayers, null);
    }

    internal SlideEmbeddings Embed(Tensor tileEmbeddings, Tensor coords, bool allLayers, ActivationSink? sink, CancellationToken cancellation = default)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var (embeddings, coords2) = SlideInputValidation.Check(tileEmbeddings, coords, Config);
        var cells = SlidePositions.ToGridCells(coords2, Config.TileSize, Config.PositionGridSize);
        foreach (var w in cells.Warnings) Options.OnWarning?.Invoke(w);

        using var noGrad = torch.no_grad();
        using var scope = torch.NewDisposeScope();
        var h = EmbedTiles(embeddings, cells);
        var blocking = Options.Attention == SlideAttention.DenseBaseline ? Options.Blocking with { DenseBaseline = true } : Options.Blocking;
        LongNetOutputs outputs;
        // One forward at a time per encoder: concurrent callers (a server's requests) queue here.
        lock (_forward)
            outputs = _model.Forward(h, allLayers, blocking, sink, cancellation);
        h.Dispose();

        var encoderOut = outputs.EncoderOut;
        var last = Out(encoderOut);
        var result = new SlideEmbeddings
        {
            ClsEmbedding = Out(_model.HeadCls(encoderOut)),
            MeanPooledEmbedding = Out(_model.HeadPooled(encoderOut)),
            ClsLayerEmbeddings = outputs.LayerCls?.Select(Out).ToList(),
            MeanPooledLayerEmbeddings = outputs.LayerPooled?.Select(Out).ToList(),
            LastHiddenState = last,
            ContextualTileEmbeddings = last[0].narrow(0, 1, last.shape[1] - 1).MoveToOuterDisposeScope(),
            Warnings = cells.Warnings,
        };
        try
        {
            CheckOutput(result);
        }
        catch
        {
            result.Dispose();
            throw;
        }
        return result;
    }

    /// <summary>
    /// The tile embeddings were checked finite on the way in; NaN or infinity out means broken weights or an overflow
    /// in a reduced precision. An error naming the first bad token, rather than NaN slide embeddings written to disk.
    /// </summary>
    private void CheckOutput(SlideEmbeddings encoding)
    {
        var hidden = encoding.LastHiddenState[0];
        long tokens = hidden.shape[0];
        string? what = FiniteValues.NonFiniteRows(hidden) is { } bad
            ? (bad.First == 0 ? "the CLS token" : $"tile {bad.First - 1}") + $" ({bad.Count} of {tokens} tokens)"
            : new[] { encoding.ClsEmbedding, encoding.MeanPooledEmbedding }.Concat(encoding.ClsLayerEmbeddings ?? []).Concat(encoding.MeanPooledLayerEmbeddings ?? [])
                .Any(t => FiniteValues.NonFiniteRows(t) is not null) ? "the slide embedding" : null;
        if (what is null) return;
        throw new GigaPathException(
            $"slide encoder: the output for {what} holds NaN or infinity although the tile embeddings are finite: the weights " +
            $"({WeightsPath ?? "in memory"}) hold NaN or infinity" + DeviceSelection.OverflowHint(Options.DType));
    }

    /// <summary>h_0 [1, N+1, D]; the positions and any device/dtype copy of the input are freed before the encoder runs.</summary>
    private Tensor EmbedTiles(Tensor embeddings, GridCells cells) => _model.Embed(embeddings, cells, Options.Device);

    private static Tensor Out(Tensor t) => t.detach().to(ScalarType.Float32, CPU).contiguous().MoveToOuterDisposeScope();

    private static void Validate(SlideEncoderOptions options)
    {
        DeviceSelection.EnsureSupported(options.Device, options.DType, options.AllowSlowDType);
        options.Blocking.Validate();
    }

    /// <summary>Frees the weights.</summary>
    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _model.Dispose();
    }
}
