using GigaPath.IO;
using GigaPath.Models.Slide;

namespace GigaPath.Training;

/// <summary>
/// Contextual tile embeddings for attention pooling over the slide encoder's outputs: a frozen slide encoder runs once
/// per slide (inference path) and its per-tile outputs (<c>tile_embeddings_ctx</c>) replace the bag's stored ones,
/// so training and prediction see the same encoder. The encoder's weights hash is recorded with the head.
/// </summary>
internal sealed class ContextualTiles : IDisposable
{
    private readonly SlideEncoder _encoder;

    public string Source { get; }
    public string Sha256 => _encoder.WeightsSha256;
    public SlideEncoderConfig Config => _encoder.Config;

    private ContextualTiles(SlideEncoder encoder, string source)
    {
        _encoder = encoder;
        Source = source;
    }

    /// <param name="slideModel">Slide-encoder folder or weight file.</param>
    /// <param name="expectedSha256">When given, the weights must hash to it (the encoder a head was trained with).</param>
    public static ContextualTiles Load(string slideModel, string? expectedSha256 = null)
    {
        var encoder = SlideEncoder.Load(slideModel);
        if (expectedSha256 is not null && !string.Equals(encoder.WeightsSha256, expectedSha256, StringComparison.OrdinalIgnoreCase))
        {
            encoder.Dispose();
            throw new GigaPathException($"{slideModel}: slide encoder weights have SHA-256 {encoder.WeightsSha256}, but the head was trained on contextual embeddings from weights {expectedSha256}");
        }
        return new ContextualTiles(encoder, Path.GetFullPath(slideModel));
    }

    public SlideBag Apply(SlideBag bag)
    {
        if (bag.Dim != Config.InputChannels)
            throw new GigaPathException($"{bag.Path}: tile features are {bag.Dim} wide but the slide encoder {Source} takes {Config.InputChannels}");
        var coords = bag.RequireEncoderCoords().Select(v => (double)v).ToArray();
        var tiles = new TileFeatures(bag.Features, bag.Count, bag.Dim, null, new Dictionary<string, object>(), bag.Path) { TilingCoords = coords };
        using var encoding = _encoder.Embed(tiles);
        var contextual = encoding.ContextualTileEmbeddings.contiguous().data<float>().ToArray();
        return bag with { Contextual = contextual, ContextualDim = Config.EmbedDim };
    }

    public void Dispose() => _encoder.Dispose();
}
