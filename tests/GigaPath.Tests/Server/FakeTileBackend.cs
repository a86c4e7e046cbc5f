using GigaPath.Server;
using GigaPath.Server.Scoring;

namespace GigaPath.Tests.Server;

/// <summary>
/// A tile backend without a model, for the server's own behaviour (queueing, batching, refusals): an "image" is
/// any bytes, its pixels are (length, first byte, last byte), and its embedding is a fixed function of those, so
/// every answer can be checked; its patch map (a 1 × 1 grid) is a different fixed function. <see cref="Gate"/> can hold the worker inside <see cref="Embed"/>.
/// </summary>
internal sealed class FakeTileBackend : ITileEmbeddingBackend
{
    public const int EmbeddingDim = 4;

    private readonly List<int> _batches = new();

    /// <summary>Embed waits on this; reset it to hold the worker, set it to release.</summary>
    public ManualResetEventSlim Gate { get; } = new(true);

    /// <summary>Set each time Embed is entered (before waiting on the gate).</summary>
    public SemaphoreSlim Entered { get; } = new(0);

    public Exception? FailNext { get; set; }

    public int Dim => EmbeddingDim;
    public int GridSize => 1;
    public string Description => "fake";
    public bool Disposed { get; private set; }

    public IReadOnlyList<int> Batches
    {
        get { lock (_batches) return _batches.ToList(); }
    }

    public float[] Preprocess(byte[] encodedImage, int row, long maxPixels, Action<int, int>? onSize = null) =>
        new float[] { encodedImage.Length, encodedImage[0], encodedImage[^1] };

    public static float[] Expected(byte[] image) =>
        new float[] { image.Length, image[0] * 0.5f, image[^1] + 1, -1 };

    public static float[] ExpectedMap(byte[] image) =>
        new float[] { -image.Length, image[0], image[^1], 2 };

    public float[][] Embed(IReadOnlyList<float[]> pixels, TileOutput output)
    {
        lock (_batches) _batches.Add(pixels.Count);
        Entered.Release();
        if (!Gate.Wait(TimeSpan.FromSeconds(30)))
            throw new TimeoutException("test gate was never opened");
        if (FailNext is { } e)
        {
            FailNext = null;
            throw e;
        }
        return output == TileOutput.Cls
            ? pixels.Select(p => new float[] { p[0], p[1] * 0.5f, p[2] + 1, -1 }).ToArray()
            : pixels.Select(p => new float[] { -p[0], p[1], p[2], 2 }).ToArray();
    }

    public void Dispose() => Disposed = true;
}
