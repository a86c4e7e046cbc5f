using GigaPath.IO;
using GigaPath.Models.Slide;

namespace GigaPath.Server.Slide;

/// <summary>The slide encoder behind <c>/score/slide</c>; called by one thread at a time (see <see cref="SlideRunner"/>).</summary>
public interface ISlideEmbeddingBackend : IDisposable
{
    /// <summary>Length of one input tile embedding (1536 for Prov-GigaPath).</summary>
    int InputDim { get; }

    string Description { get; }

    /// <summary>Encodes one slide (tiles with coordinates); bad input throws <see cref="GigaPathException"/>.</summary>
    SlideResult Encode(TileFeatures tiles, SlidePooling pool, bool allLayers);
}

/// <summary>One output tensor of a slide encoding, float32 row-major.</summary>
public sealed record NamedTensor(string Name, float[] Data, long[] Shape);

/// <summary>The named outputs of one slide, in a fixed order, with the encoder's non-fatal warnings.</summary>
public sealed record SlideResult(IReadOnlyList<NamedTensor> Outputs, IReadOnlyList<string> Warnings);
