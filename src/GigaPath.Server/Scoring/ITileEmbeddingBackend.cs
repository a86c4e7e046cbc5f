namespace GigaPath.Server.Scoring;

/// <summary>
/// The tile model behind <c>/score</c>, split where the server splits its work: <see cref="Preprocess"/> runs on
/// request threads, in parallel; <see cref="Embed"/> runs only on the single batching worker, so the model is
/// never entered by two threads at once.
/// </summary>
public interface ITileEmbeddingBackend : IDisposable
{
    /// <summary>Length of one embedding (1536 for Prov-GigaPath).</summary>
    int Dim { get; }

    /// <summary>What is loaded, for /ready and the logs (model folder, weights hash, device).</summary>
    string Description { get; }

    /// <summary>
    /// Decodes an encoded image and turns it into model input. Throws <see cref="ApiException"/> (413 for an image
    /// over <paramref name="maxPixels"/>, 422 for bytes that are not an image) naming <paramref name="row"/>.
    /// Thread-safe.
    /// </summary>
    float[] Preprocess(byte[] encodedImage, int row, long maxPixels);

    /// <summary>Embeds a batch of preprocessed images, one float[Dim] per input, in order.</summary>
    float[][] Embed(IReadOnlyList<float[]> pixels);
}
