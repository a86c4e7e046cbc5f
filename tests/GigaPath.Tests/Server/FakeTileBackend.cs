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
    private readonly List<IReadOnlyList<string>> _names = new();
    private int _cancelled;

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

    /// <summary>The names of the images of each batch, in order.</summary>
    public IReadOnlyList<IReadOnlyList<string>> Names
    {
        get { lock (_batches) return _names.ToList(); }
    }

    /// <summary>Batches whose forward was cancelled (every request in them aborted) while held at the gate.</summary>
    public int Cancelled => Volatile.Read(ref _cancelled);

    public float[][] Embed(IReadOnlyList<float[]> pixels, IReadOnlyList<string> names, TileOutput output, CancellationToken cancellationToken)
    {
        lock (_batches)
        {
            _batches.Add(pixels.Count);
            _names.Add(names.ToList());
        }
        Entered.Release();
        // Waits like a forward pass: until released, or until the batch's requests are all gone (the forward's own
        // per-block check stops it there).
        int signalled = WaitHandle.WaitAny([Gate.WaitHandle, cancellationToken.WaitHandle], TimeSpan.FromSeconds(30));
        if (signalled == WaitHandle.WaitTimeout)
            throw new TimeoutException("test gate was never opened");
        if (signalled == 1)
        {
            Interlocked.Increment(ref _cancelled);
            cancellationToken.ThrowIfCancellationRequested();
        }
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
