namespace GigaPath.Server.Slide;

/// <summary>The slide encoder behind <c>/score/slide</c>; called by one thread at a time (see <see cref="SlideRunner"/>).</summary>
public interface ISlideEmbeddingBackend : IDisposable
{
    /// <summary>Length of one input tile embedding (1536 for Prov-GigaPath).</summary>
    int InputDim { get; }

    string Description { get; }

    /// <summary>
    /// Encodes one slide. <paramref name="tileEmbeddings"/> holds <paramref name="tileCount"/> rows of
    /// <see cref="InputDim"/> floats, <paramref name="coords"/> as many (x, y) pairs. Returns the named outputs in a
    /// fixed order, with the names <c>embed-slide</c> writes.
    /// </summary>
    IReadOnlyList<NamedTensor> Encode(float[] tileEmbeddings, int tileCount, float[] coords, SlidePooling pool, bool allLayers);
}

/// <summary>Which head output is the slide's main embedding.</summary>
public enum SlidePooling
{
    /// <summary>Mean over tile tokens (global_pool=True), what the authors use.</summary>
    Mean,

    /// <summary>The CLS token (global_pool=False), the bare create_model default.</summary>
    Cls,
}

/// <summary>One output tensor of a slide encoding.</summary>
public sealed record NamedTensor(string Name, float[] Data, long[] Shape);
