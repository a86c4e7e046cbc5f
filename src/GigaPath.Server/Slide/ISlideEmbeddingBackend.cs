using GigaPath.IO;
using GigaPath.Models.Slide;

namespace GigaPath.Server.Slide;

/// <summary>The slide encoder behind <c>/score/slide</c>; called by one thread at a time (see <see cref="SlideRunner"/>).</summary>
public interface ISlideEmbeddingBackend : IDisposable
{
    /// <summary>Length of one input tile embedding (1536 for Prov-GigaPath).</summary>
    int InputDim { get; }

    string Description { get; }

    /// <summary>
    /// Encodes one slide (tiles with coordinates; positions from the tiles' own metadata, else
    /// <paramref name="level0TileSize"/>, as <c>embed-slide</c> finds them); bad input throws <see cref="GigaPathException"/>.
    /// Cancelling <paramref name="cancellationToken"/> (the request was aborted) stops the forward before its next layer.
    /// </summary>
    Task<SlideResult> EncodeAsync(TileFeatures tiles, SlidePooling pool, bool allLayers, double? level0TileSize, CancellationToken cancellationToken);
}

/// <summary>One output tensor of a slide encoding, float32 row-major.</summary>
public sealed record NamedTensor(string Name, float[] Data, long[] Shape);

/// <summary>The named outputs of one slide, in a fixed order, with the encoder's non-fatal warnings and how the tiles' positions were found.</summary>
public sealed record SlideResult(IReadOnlyList<NamedTensor> Outputs, IReadOnlyList<string> Warnings, string? Positions = null);
