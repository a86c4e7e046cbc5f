using System.Text.Json.Nodes;
using GigaPath.Models.Slide;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GigaPath.Models.Heads;

/// <summary>
/// The reference's <c>ClassificationHead</c> (gigapath/classification_head.py): the slide encoder's all-layer outputs
/// (head on h_i: LN_out(h_i)[:, 0], or LN_out(mean of tile rows) with global pooling) at the <c>feat_layer</c> indices,
/// concatenated and fed to one linear layer. State-dict keys match the reference's (<c>slide_encoder.*</c>,
/// <c>classifier.0.weight</c>/<c>bias</c>). With <c>freeze</c> the encoder gets no gradients (its dropout still acts in
/// training mode, as in the reference).
/// </summary>
internal sealed class SlideClassificationHead : SlideHead
{
#pragma warning disable IDE1006 // field names are the checkpoint keys
    private readonly LongNetViT slide_encoder;
    private readonly Sequential classifier;
#pragma warning restore IDE1006
    private readonly int[] _layers;

    public SlideEncoderConfig EncoderConfig => slide_encoder.Config;

    /// <summary>The encoder's layer checkpointing in the training forward (tests force either path).</summary>
    internal Checkpointing Checkpoint
    {
        get => slide_encoder.Checkpoint;
        set => slide_encoder.Checkpoint = value;
    }

    public SlideClassificationHead(HeadConfig config) : base(nameof(SlideClassificationHead), config)
    {
        if (config.Kind != HeadKind.Slide) throw new ArgumentException("not a slide head configuration", nameof(config));
        var encoderConfig = EncoderConfigOf(config);
        if (encoderConfig.InputChannels != config.InputDim)
            throw new GigaPathException($"slide head: the slide encoder takes {encoderConfig.InputChannels}-wide tile features but input_dim is {config.InputDim}");
        _layers = FeatLayers.Parse(config.FeatLayer, encoderConfig.Depth);
        slide_encoder = new LongNetViT(encoderConfig, config.Dropout);
        classifier = nn.Sequential(("0", nn.Linear(_layers.Length * encoderConfig.EmbedDim, config.NumClasses)));
        RegisterComponents();
        if (config.Freeze)
            foreach (var p in slide_encoder.parameters()) p.requires_grad = false;
    }

    public static SlideEncoderConfig EncoderConfigOf(HeadConfig config) =>
        SlideEncoderConfigJson.Parse(config.SlideEncoder ?? throw new GigaPathException("slide head: configuration lacks 'slide_encoder'"), "head configuration: slide_encoder");

    public static JsonObject EncoderConfigJson(SlideEncoderConfig config) => (JsonObject)JsonNode.Parse(config.ToJson())!;

    /// <summary>
    /// The head the fine-tuning measurements train (benchmarks, the memory probe): two classes, the cls rows of seven
    /// layers' states (feat_layer 5-11), dropout 0.1, on a slide encoder of <paramref name="encoder"/>'s shape.
    /// </summary>
    internal static HeadConfig MeasurementConfig(SlideEncoderConfig encoder) => new()
    {
        Kind = HeadKind.Slide,
        Classes = ["a", "b"],
        InputDim = encoder.InputChannels,
        FeatLayer = "5-11",
        Dropout = 0.1,
        SlideEncoder = EncoderConfigJson(encoder),
    };

    /// <summary>Copies a pretrained slide encoder's weights (model folder or weight file) into this head.</summary>
    public void LoadEncoder(string slideModel)
    {
        using var encoder = SlideEncoder.Load(slideModel);
        if (!encoder.Config.Equals(EncoderConfig))
            throw new GigaPathException($"{slideModel}: slide encoder configuration {encoder.Config} differs from the head's {EncoderConfig}");
        var source = encoder.Model.state_dict();
        using var _ = no_grad();
        foreach (var (name, tensor) in slide_encoder.state_dict())
            tensor.copy_(source[name]);
    }

    public override HeadOutput Forward(SlideTensors slide)
    {
        var (embeddings, coords) = SlideInputValidation.Check(slide.RequireFeatures("slide head"), slide.RequireCoords("slide head"), EncoderConfig);
        var cells = SlidePositions.ToGridCells(coords, EncoderConfig.TileSize, EncoderConfig.PositionGridSize);
        var h0 = slide_encoder.Embed(embeddings, cells, slide_encoder.cls_token.device);
        // The same layers as inference; the states after the last selected layer are never used, so not computed.
        var selected = slide_encoder.HeadFeatures(h0, _layers, Config.GlobalPool ? StateSummary.MeanOfTiles : StateSummary.Cls, AttentionBlocking.Default);
        var features = selected.Count == 1 ? selected[0] : cat(selected, -1);
        // The classifier may hold bfloat16 weights (ToComputeType) while the features are float32.
        return new HeadOutput(Projection.Apply((Linear)classifier[0], features));
    }

    /// <summary>
    /// Only the Linear layers compute in a lower precision; LayerNorms, the cls token and the residual stream stay float32,
    /// the precision rule of the inference encoder (autocast-like, as the reference's GPU runs).
    /// </summary>
    internal override void ToComputeType(ScalarType dtype)
    {
        using var _ = no_grad();
        foreach (var linear in modules().OfType<Linear>()) linear.to(dtype);
    }

    /// <summary>
    /// All trainable parameters but those the head's forward does not use: <c>encoder.layer_norm</c> (the all-layer
    /// outputs skip it, as in the reference) and the layers past the last one <c>feat_layer</c> reads (not run).
    /// </summary>
    internal override IEnumerable<Parameter> TrainedParameters()
    {
        int run = _layers.Max();
        return named_parameters().Where(p => p.parameter.requires_grad && !Unused(p.name)).Select(p => p.parameter);

        bool Unused(string name)
        {
            if (name.StartsWith("slide_encoder.encoder.layer_norm.", StringComparison.Ordinal)) return true;
            const string layers = "slide_encoder.encoder.layers.";
            if (!name.StartsWith(layers, StringComparison.Ordinal)) return false;
            var index = name[layers.Length..];
            return int.Parse(index[..index.IndexOf('.', StringComparison.Ordinal)], System.Globalization.CultureInfo.InvariantCulture) >= run;
        }
    }

    /// <summary>Layer-wise learning-rate decay as the reference's <c>param_groups_lrd</c>; 1-D parameters without weight decay.</summary>
    public override IEnumerable<(string Name, Parameter Parameter, double LrScale, bool Decay)> ParameterGroups(double layerDecay) =>
        named_parameters().Where(p => p.parameter.requires_grad)
            .Select(p => (p.name, p.parameter, LayerScale(p.name, EncoderConfig.Depth, layerDecay), p.parameter.dim() > 1));

    /// <summary>
    /// Layer-wise decay as the reference's <c>get_layer_id</c> assigns it: with L = depth + 1, cls_token is layer 0,
    /// encoder layer i is layer i + 1, everything else layer L; the scale is decay^(L - layer). The reference tests
    /// <c>name.startswith('patch_embed')</c> on names that begin with <c>slide_encoder.</c>, so the patch embedding
    /// falls through to layer L (full rate); that is reproduced here so results match the published recipe.
    /// </summary>
    public static double LayerScale(string parameterName, int depth, double decay)
    {
        int numLayers = depth + 1;
        int layer;
        if (parameterName.Contains("cls_token", StringComparison.Ordinal) || parameterName.Contains("pos_embed", StringComparison.Ordinal))
            layer = 0;
        else if (parameterName.StartsWith("patch_embed", StringComparison.Ordinal))
            layer = 0;
        else if (parameterName.StartsWith("slide_encoder.encoder.layers.", StringComparison.Ordinal))
            layer = int.Parse(parameterName.Split('.')[3], System.Globalization.CultureInfo.InvariantCulture) + 1;
        else
            layer = numLayers;
        return Math.Pow(decay, numLayers - layer);
    }
}
