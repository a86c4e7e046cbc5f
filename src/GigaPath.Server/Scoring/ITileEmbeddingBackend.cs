namespace GigaPath.Server.Scoring;

/// <summary>What <c>/score</c> returns for each image.</summary>
public enum TileOutput
{
    /// <summary>
    /// The default, as Azure ML's Prov-GigaPath endpoint answers: the tile encoder's final-norm patch tokens
    /// (<c>forward_features</c> without the class and register rows) as a channels-first map [1, D, H/p, W/p]
    /// (1×1536×14×14 for Prov-GigaPath).
    /// </summary>
    PatchMap,

    /// <summary>
    /// <c>?features=cls</c>: the tile embedding (what <c>embed-tiles</c> writes): the class token after the final norm,
    /// or the encoder's own recipe (Virchow: class token ⊕ mean of the patch tokens).
    /// </summary>
    Cls,
}

/// <summary>
/// The tile model behind <c>/score</c>, split where the server splits its work: <see cref="Preprocess"/> runs on
/// request threads, in parallel; <see cref="Embed"/> runs only on the single batching worker, so the model is
/// never entered by two threads at once.
/// </summary>
public interface ITileEmbeddingBackend : IDisposable
{
    /// <summary>Length of one embedding (1536 for Prov-GigaPath, 2560 for Virchow2).</summary>
    int Dim { get; }

    /// <summary>Length of one patch token, the channels of the patch map (1536 for Prov-GigaPath, 1280 for Virchow2).</summary>
    int TokenDim => Dim;

    /// <summary>Side of the patch grid (img_size / patch_size: 14 for Prov-GigaPath).</summary>
    int GridSize { get; }

    /// <summary>What is loaded, for /ready and the logs (model folder, weights hash, device).</summary>
    string Description { get; }

    /// <summary>
    /// Decodes an encoded image and turns it into model input. Throws <see cref="ApiException"/> (413 for an image
    /// over <paramref name="maxPixels"/>, 422 for bytes that are not an image) naming <paramref name="row"/>.
    /// <paramref name="onSize"/> gets the image's width and height from its header before any pixel memory is
    /// allocated (the server admits the decode into its memory budget there, and refuses it by throwing). Thread-safe.
    /// </summary>
    float[] Preprocess(byte[] encodedImage, int row, long maxPixels, Action<int, int>? onSize = null);

    /// <summary>
    /// Embeds a batch of preprocessed images in one forward pass, one array per input, in order: float[Dim] for
    /// <see cref="TileOutput.Cls"/>, float[TokenDim × GridSize × GridSize] (channels first, then patch rows, row-major)
    /// for <see cref="TileOutput.PatchMap"/>. <paramref name="names"/> say where each image came from (its request
    /// and row), for errors. Stops with <see cref="OperationCanceledException"/> when
    /// <paramref name="cancellationToken"/> is cancelled (every request in the batch went away).
    /// </summary>
    float[][] Embed(IReadOnlyList<float[]> pixels, IReadOnlyList<string> names, TileOutput output, CancellationToken cancellationToken);
}
