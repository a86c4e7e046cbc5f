using GigaPath.Runtime;
using GigaPath.IO;
using GigaPath.Models.Slide;
using GigaPath.Server.Hosting;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Server.Slide;

/// <summary>
/// The real slide encoder, answering with the tensors of the slide-embedding file (<see cref="SlideEmbeddingFile"/>,
/// as <c>embed-slide</c> and <c>run</c> write it): <c>slide_embedding</c> [1, D] (mean of the tiles or cls token, per
/// the pooling), <c>last_hidden_state</c> [1, N+1, D], with all layers <c>layer_0</c> … <c>layer_K</c> [1, D] in the
/// same pooling, and <c>tile_embeddings_ctx</c> [N, D].
/// </summary>
public sealed class SlideEncoderBackend : ISlideEmbeddingBackend
{
    private readonly SlideEncoder _encoder;

    public SlideEncoderBackend(SlideEncoder encoder) => _encoder = encoder;

    /// <summary>Loads the slide encoder named by <see cref="ServerOptions.SlideModelDir"/> on the chosen device and dtype.</summary>
    public static SlideEncoderBackend Load(ServerOptions options)
    {
        var device = DeviceSelection.ParseDevice(options.Device);
        return new(SlideEncoder.Load(options.SlideModelDir ?? throw new GigaPathException("--slide-model: no slide encoder folder given"),
            new SlideEncoderOptions { Device = device, DType = DeviceSelection.ParseDType(options.DType, device), AllowSlowDType = options.AllowSlowDType }));
    }

    public int InputDim => _encoder.Config.InputChannels;

    public string Description =>
        $"{_encoder.WeightsPath ?? "in-memory model"} (sha256 {_encoder.WeightsSha256[..12]}, {_encoder.Options.Device}, {DeviceSelection.Name(_encoder.Options.DType)})";

    public async Task<SlideResult> EncodeAsync(TileFeatures tiles, SlidePooling pool, bool allLayers, double? level0TileSize, CancellationToken cancellationToken)
    {
        // The call embed-slide makes: the same positions from the same file, the same tensors.
        using var encoding = await _encoder.EmbedAsync(tiles, allLayers, level0TileSize, cancellationToken).ConfigureAwait(false);
        var outputs = SlideEmbeddingFile.GetTensors(encoding, pool)
            .Select(kv => new NamedTensor(kv.Key, kv.Value.data<float>().ToArray(), kv.Value.shape))
            .ToList();
        return new SlideResult(outputs, encoding.Warnings, encoding.Placement?.ToString());
    }

    public void Dispose() => _encoder.Dispose();
}
