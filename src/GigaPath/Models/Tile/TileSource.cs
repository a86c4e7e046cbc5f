using GigaPath.Imaging;
using GigaPath.Pipeline;
using static TorchSharp.torch;

namespace GigaPath.Models.Tile;

/// <summary>
/// An ordered list of tiles for <see cref="TileEncoder.EmbedAsync"/> and <see cref="TileEncoder.EmbedBatchesAsync"/>:
/// image files, encoded images in memory, or pixels already preprocessed. Every source goes through one loader, which
/// decodes and preprocesses tiles in parallel ahead of the encoder, packs them into batches and names the tile behind
/// any error (<see cref="Describe"/>). Make one with the <c>From…</c> methods. Sources only read: one may be embedded
/// several times, and from several threads.
/// </summary>
public abstract class TileSource
{
    private protected TileSource()
    {
    }

    /// <summary>Number of tiles.</summary>
    public abstract int Count { get; }

    /// <summary>Tile <paramref name="index"/> as a person would find it (its file, its name or row), for messages.</summary>
    public abstract string Describe(int index);

    /// <summary>
    /// Tile <paramref name="index"/> preprocessed by <paramref name="preprocessor"/>: [3 × CropSize × CropSize] floats.
    /// Called concurrently by the loader's readers.
    /// </summary>
    internal abstract float[] Read(int index, TilePreprocessor preprocessor);

    /// <summary>
    /// Image files (PNG, JPEG, TIFF; any size: resized and center-cropped by the encoder's own transform), in order;
    /// a folder stands for its image files sorted by name (not recursive). Missing files and folders without images
    /// throw <see cref="GigaPathException"/> naming them.
    /// </summary>
    public static TileSource FromFiles(IEnumerable<string> pathsOrFolders)
    {
        ArgumentNullException.ThrowIfNull(pathsOrFolders);
        return new FileTileSource(ImageFileInputs.Expand(pathsOrFolders));
    }

    /// <summary>
    /// Encoded images in memory (PNG, JPEG, TIFF bytes, e.g. from a request), in order. <paramref name="names"/>
    /// (one per image) name them in errors; by default "image 0", "image 1", ….
    /// </summary>
    public static TileSource FromImages(IReadOnlyList<ReadOnlyMemory<byte>> images, IReadOnlyList<string>? names = null)
    {
        ArgumentNullException.ThrowIfNull(images);
        if (names is not null && names.Count != images.Count)
            throw new ArgumentException($"{names.Count} names for {images.Count} images", nameof(names));
        return new EncodedTileSource(images.ToArray(), names?.ToArray());
    }

    /// <summary>
    /// Encoded images read from <paramref name="streams"/> (each read to its end now, so the streams may be closed
    /// afterwards and need not be seekable), in order.
    /// </summary>
    public static TileSource FromStreams(IEnumerable<Stream> streams)
    {
        ArgumentNullException.ThrowIfNull(streams);
        var images = new List<ReadOnlyMemory<byte>>();
        foreach (var stream in streams)
        {
            using var copy = new MemoryStream();
            stream.CopyTo(copy);
            images.Add(copy.ToArray());
        }
        return new EncodedTileSource(images.ToArray(), null);
    }

    /// <summary>
    /// Tiles already preprocessed, one array of [3 × S × S] floats each (S the encoder's input size), normalised as the
    /// encoder's <see cref="TileEncoder.Preprocessor"/> does (its <see cref="TilePreprocessor.Preprocess"/> output).
    /// The arrays are not copied: do not change them while the source is in use. <paramref name="names"/> (one per
    /// tile) name them in errors; by default "tile 0", "tile 1", ….
    /// </summary>
    /// <param name="tiles">The preprocessed tiles, in order.</param>
    /// <param name="names">How a person finds each tile (a request's row, a file), or null.</param>
    public static TileSource FromPreprocessed(IReadOnlyList<float[]> tiles, IReadOnlyList<string>? names = null)
    {
        ArgumentNullException.ThrowIfNull(tiles);
        if (names is not null && names.Count != tiles.Count)
            throw new ArgumentException($"{names.Count} names for {tiles.Count} tiles", nameof(names));
        for (int i = 0; i < tiles.Count; i++)
            if (tiles[i] is null) throw new ArgumentException($"tile {i} is null", nameof(tiles));
        return new PreprocessedTileSource(tiles.ToArray(), names?.ToArray());
    }

    /// <summary>
    /// Tiles already preprocessed: <paramref name="pixels"/> [N, 3, S, S] float32, normalised as the encoder's
    /// <see cref="TileEncoder.Preprocessor"/> does (S its input size). The tensor is copied now; the caller keeps it.
    /// </summary>
    public static TileSource FromPixels(Tensor pixels)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        if (pixels.dim() != 4 || pixels.dtype != ScalarType.Float32)
            throw new GigaPathException($"pixels: expected [N, 3, S, S] float32, got {pixels.dtype} [{string.Join(", ", pixels.shape)}]");
        using var cpu = pixels.to(CPU).contiguous();
        int n = checked((int)pixels.shape[0]), per = checked((int)(pixels.numel() / Math.Max(1, pixels.shape[0])));
        var data = cpu.data<float>().ToArray();
        return new PixelTileSource(data, n, per, [.. pixels.shape.Skip(1)], i => $"pixels: tile {i}");
    }
}

/// <summary>Image files, in order (<see cref="TileSource.FromFiles"/>).</summary>
internal sealed class FileTileSource(IReadOnlyList<string> files) : TileSource
{
    public IReadOnlyList<string> Files { get; } = files;

    public override int Count => Files.Count;

    public override string Describe(int index) => Files[index];

    internal override float[] Read(int index, TilePreprocessor preprocessor) => preprocessor.PreprocessFile(Files[index]);
}

/// <summary>Encoded images in memory (<see cref="TileSource.FromImages"/>).</summary>
internal sealed class EncodedTileSource(ReadOnlyMemory<byte>[] images, string[]? names) : TileSource
{
    public override int Count => images.Length;

    public override string Describe(int index) => names?[index] ?? $"image {index}";

    internal override float[] Read(int index, TilePreprocessor preprocessor)
    {
        var name = Describe(index);
        return preprocessor.Preprocess(ImageDecoder.Decode(images[index].Span, name), name);
    }
}

/// <summary>Preprocessed pixels, row-major [N, per-tile floats] (<see cref="TileSource.FromPixels"/>, pixel files).</summary>
internal sealed class PixelTileSource(float[] data, int count, int perTile, long[] tileShape, Func<int, string> describe) : TileSource
{
    public long[] TileShape { get; } = tileShape;

    public override int Count => count;

    public override string Describe(int index) => describe(index);

    internal override float[] Read(int index, TilePreprocessor preprocessor)
    {
        if (perTile != preprocessor.OutputLength)
            throw new GigaPathException($"{Describe(index)}: holds [{string.Join(", ", TileShape)}] values, the model takes [3, {preprocessor.CropSize}, {preprocessor.CropSize}]");
        return data.AsSpan(index * perTile, perTile).ToArray();
    }
}

/// <summary>Preprocessed tiles, one array each (<see cref="TileSource.FromPreprocessed"/>).</summary>
internal sealed class PreprocessedTileSource(float[][] tiles, string[]? names) : TileSource
{
    public override int Count => tiles.Length;

    public override string Describe(int index) => names?[index] ?? $"tile {index}";

    internal override float[] Read(int index, TilePreprocessor preprocessor)
    {
        var tile = tiles[index];
        if (tile.Length != preprocessor.OutputLength)
            throw new GigaPathException($"{Describe(index)}: holds {tile.Length} values, the model takes 3x{preprocessor.CropSize}x{preprocessor.CropSize} = {preprocessor.OutputLength}");
        return tile;
    }
}

/// <summary>Tiles read by a function (a slide's tiles in the pipeline), named by another.</summary>
internal sealed class DelegateTileSource(int count, Func<int, TilePreprocessor, float[]> read, Func<int, string> describe) : TileSource
{
    public override int Count => count;

    public override string Describe(int index) => describe(index);

    internal override float[] Read(int index, TilePreprocessor preprocessor) => read(index, preprocessor);
}
