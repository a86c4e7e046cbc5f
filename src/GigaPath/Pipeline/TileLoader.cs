using System.Diagnostics;
using GigaPath.Imaging;
using GigaPath.Models.Tile;

namespace GigaPath.Pipeline;

/// <summary>
/// The one tile-embedding loop: a <see cref="TileSource"/>'s tiles are decoded and preprocessed by reader tasks ahead of
/// the encoder (<see cref="TileStream"/>), packed into batches in input order, embedded (<see cref="TileEncoder.EmbedPreprocessed"/>, the step
/// <see cref="TileEncoder.EmbedBatch"/> makes public), and any bad tile (unreadable,
/// non-finite pixels, non-finite output) is named by its source. <see cref="TileEncoder"/>'s embedding methods,
/// <c>embed-tiles</c> and the slide pipeline all run through it. Single consumer: call <see cref="Next"/> from one thread.
/// </summary>
internal sealed class TileLoader : IDisposable
{
    private readonly TileEncoder _encoder;
    private readonly TileSource _source;
    private readonly TilePreprocessor _preprocessor;
    private readonly TileStream _stream;
    private readonly bool _tokens;
    private readonly CancellationToken _cancellation;
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private long _encoderTicks;

    public TileLoader(TileEncoder encoder, TileSource source, TileEmbeddingOptions options, CancellationToken cancellation)
    {
        ArgumentNullException.ThrowIfNull(encoder);
        ArgumentNullException.ThrowIfNull(source);
        options.Validate();
        if (source.Count == 0)
            throw new GigaPathException("no tiles to embed");
        _encoder = encoder;
        _source = source;
        _tokens = options.ReturnTokens;
        _cancellation = cancellation;
        _preprocessor = options.MaxAspectRatio == encoder.Preprocessor.MaxAspectRatio
            ? encoder.Preprocessor
            : encoder.Preprocessor.WithMaxAspectRatio(options.MaxAspectRatio);
        _stream = new TileStream(source.Count, i => source.Read(i, _preprocessor), options.BatchSize, options.Readers,
            options.ReadAheadBatches, cancellation);
    }

    /// <summary>Tiles in the source.</summary>
    public int Count => _source.Count;

    /// <summary>Time since the loader started.</summary>
    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>Time in the encoder.</summary>
    public TimeSpan EncoderTime => Stopwatch.GetElapsedTime(0, _encoderTicks);

    /// <summary>Time the readers spent reading and preprocessing, summed over readers.</summary>
    public TimeSpan ReadTime => _stream.ReadTime;

    /// <summary>Time the encoder waited for a batch that was not read yet.</summary>
    public TimeSpan WaitTime => _stream.WaitTime;

    /// <summary>The next batch embedded (its first tile's index and the float32 CPU result, owned by the caller), or null after the last.</summary>
    public (int Start, TileEmbeddings Result)? Next()
    {
        _cancellation.ThrowIfCancellationRequested();
        if (_stream.Next() is not { } batch)
            return null;
        long t0 = Stopwatch.GetTimestamp();
        var result = _encoder.EmbedPreprocessed(batch.Tiles, _source, batch.Start, _preprocessor, _tokens, _cancellation);
        _encoderTicks += Stopwatch.GetTimestamp() - t0;
        return (batch.Start, result);
    }

    public void Dispose() => _stream.Dispose();
}
