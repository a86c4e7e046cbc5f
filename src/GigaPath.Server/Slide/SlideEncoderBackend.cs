using GigaPath.IO;
using GigaPath.Models.Slide;
using GigaPath.Server.Hosting;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Server.Slide;

/// <summary>
/// The real slide encoder, answering with the tensors <c>embed-slide</c> writes: <c>slide_embedding</c> [1, D]
/// (mean of the tiles or cls token, per the pooling), <c>last_hidden_state</c> [1, N+1, D],
/// <c>tile_embeddings_ctx</c> [N, D] and, with all layers, <c>layer_0</c> … <c>layer_K</c> [1, D] in the same pooling.
/// </summary>
public sealed class SlideEncoderBackend : ISlideEmbeddingBackend
{
    private readonly SlideEncoder _encoder;

    public SlideEncoderBackend(SlideEncoder encoder) => _encoder = encoder;

    /// <summary>Loads the slide encoder named by <see cref="ServerOptions.SlideModelDir"/> on the chosen device and dtype.</summary>
    public static SlideEncoderBackend Load(ServerOptions options) =>
        new(SlideEncoder.Load(options.SlideModelDir ?? throw new GigaPathException("--slide-model: no slide encoder folder given"),
            new SlideEncoderOptions { Device = options.Device, DType = SlideEncoderOptions.ParseDType(options.DType) }));

    public int InputDim => _encoder.Config.InChans;

    public string Description =>
        $"{_encoder.WeightsPath ?? "in-memory model"} (sha256 {_encoder.WeightsSha256[..12]}, {_encoder.Options.Device}, {SlideEncoderOptions.DTypeName(_encoder.Options.DType)})";

    public SlideResult Encode(TileFeatures tiles, SlidePooling pool, bool allLayers)
    {
        if (tiles.Coords is null)
            throw new GigaPathException($"{tiles.Source}: no coords; the slide encoder needs each tile's level-0 (x, y)");
        using var x = torch.tensor(tiles.Features, [tiles.Count, tiles.Dim]);
        using var c = torch.tensor(tiles.Coords, [tiles.Count, 2]);
        using var encoding = _encoder.Encode(x, c, allLayers);
        var outputs = new List<NamedTensor>
        {
            Named("slide_embedding", pool == SlidePooling.Cls ? encoding.EmbedDefault : encoding.EmbedGlobalPool),
            Named("last_hidden_state", encoding.LastHiddenState),
            Named("tile_embeddings_ctx", encoding.TileEmbeddingsCtx),
        };
        var layers = pool == SlidePooling.Cls ? encoding.Layers : encoding.LayersPooled;
        for (int i = 0; i < (layers?.Count ?? 0); i++)
            outputs.Add(Named($"layer_{i}", layers![i]));
        return new SlideResult(outputs, encoding.Warnings);
    }

    private static NamedTensor Named(string name, Tensor t) => new(name, t.data<float>().ToArray(), t.shape);

    public void Dispose() => _encoder.Dispose();
}
