using GigaPath.Weights;

namespace GigaPath.IO;

/// <summary>
/// What a tile-feature file may make a reader allocate, checked from its header before any data is read: at most
/// <see cref="MaxTiles"/> tiles, embeddings of <see cref="ExpectedDim"/> values when that is known, and — for HDF5 —
/// no more declared data than the file can hold. An HDF5 dataset can be declared chunked and never written: a 1.7 KB
/// file then "holds" 3,000,000 × 192 floats, which reading materialises (12 GB).
/// </summary>
/// <param name="MaxTiles">Most tiles (rows of the embeddings) accepted.</param>
/// <param name="ExpectedDim">The embedding length the caller needs, checked before reading (null: any).</param>
public sealed record TileFeatureBudget(long MaxTiles, int? ExpectedDim = null)
{
    /// <summary>
    /// The slide encoder's grid: 1000 × 1000 cells (<c>slide_ngrids</c>). More tiles than cells cannot all have
    /// positions of their own, so this is the most any reader accepts unless told otherwise.
    /// </summary>
    public const long SlideGridCells = 1000L * 1000;

    /// <summary>
    /// Most uncompressed bytes an HDF5 file may declare per byte of its size. Deflate, the compressor HDF5 files use,
    /// cannot exceed 1032:1; anything beyond that is data the file does not hold (unallocated chunks read as fill
    /// values). Not configurable: no real feature file comes near it.
    /// </summary>
    public const long MaxHdf5Expansion = 1032;

    /// <summary>The library's default: <see cref="SlideGridCells"/> tiles.</summary>
    public static TileFeatureBudget Default { get; } = new(SlideGridCells);

    private static readonly string[] Hdf5Coordinates = ["coords", TileFeatureH5.TilingCoordsName];

    /// <summary>Throws <see cref="BudgetExceededException"/> when the file at <paramref name="path"/> declares more than this budget allows.</summary>
    /// <remarks>A file that cannot be parsed here is left to the reader, which reports what is wrong with it.</remarks>
    public void Check(string path)
    {
        if (IsHdf5(path))
        {
            using var file = TileFeatureH5.Open(path);
            CheckHdf5(path, new FileInfo(path).Length, file);
        }
        else
        {
            CheckSafetensors(path);
        }
    }

    private static bool IsHdf5(string path)
    {
        Span<byte> head = stackalloc byte[8];
        using var fs = File.OpenRead(path);
        return fs.Read(head) == 8 && head.SequenceEqual(TileFeatureH5.Signature);
    }

    /// <summary>
    /// Holds an opened HDF5 feature file of <paramref name="fileLength"/> bytes to the budget (links, virtual
    /// datasets, external storage and filters were checked when it was opened); <paramref name="path"/> names it.
    /// </summary>
    internal void CheckHdf5(string path, long fileLength, TileFeatureH5.Opened file)
    {
        if (!file.Sets.TryGetValue("features", out var features)) return;
        var shape = features.Dims;
        CheckShape(path, "features", shape);
        // Only the datasets the reader will materialise count; a file may carry others it never touches.
        long declared = Bytes(shape, features.TypeSize);
        foreach (var name in Hdf5Coordinates)
        {
            if (!file.Sets.TryGetValue(name, out var set)) continue;
            var dims = set.Dims;
            if (dims.Length > 0 && RowsOf(dims) > MaxTiles)
                throw OverTiles(path, name, dims);
            declared = SaturatingAdd(declared, Bytes(dims, set.TypeSize));
        }
        if (declared / MaxHdf5Expansion > fileLength)
            throw new BudgetExceededException(
                $"{path}: declares {declared:N0} bytes of tile data (features [{string.Join(", ", shape)}] and coordinates) but the file is " +
                $"only {fileLength:N0} bytes; HDF5 compression cannot exceed {MaxHdf5Expansion}:1, so the data is not in the file " +
                "(datasets declared but never written?)");
    }

    private void CheckSafetensors(string path)
    {
        // The safetensors reader already refuses data offsets past the end of the file, so a header cannot declare
        // more data than the file holds; the tile count is what is left to check.
        SafeTensorsFile file;
        try
        {
            file = SafeTensorsFile.Open(path);
        }
        catch (GigaPathException)
        {
            return; // the reader reports it
        }
        using (file)
            CheckSafetensors(path, file);
    }

    /// <summary>Holds an opened safetensors feature file to the budget; <paramref name="path"/> names it.</summary>
    internal void CheckSafetensors(string path, SafeTensorsFile file)
    {
        var name = TileFeatureFile.FeatureNames.FirstOrDefault(file.Contains);
        if (name is null) return;
        CheckShape(path, name, file.GetInfo(name).Shape);
    }

    /// <summary>Throws when an [N, D] or [1, N, D] shape declares more tiles than <see cref="MaxTiles"/> or another width than <see cref="ExpectedDim"/>.</summary>
    internal void CheckShape(string path, string name, long[] shape)
    {
        if (shape.Length is < 2 or > 3) return; // the reader's shape check names it
        if (RowsOf(shape) > MaxTiles)
            throw OverTiles(path, name, shape);
        if (ExpectedDim is { } dim && shape[^1] != dim)
            throw new GigaPathException($"{path}: '{name}' has shape [{string.Join(", ", shape)}]: embeddings of {shape[^1]} values; this model takes {dim}");
    }

    private BudgetExceededException OverTiles(string path, string name, long[] shape) =>
        new($"{path}: '{name}' has shape [{string.Join(", ", shape)}]: {RowsOf(shape):N0} tiles, above the limit of {MaxTiles:N0}; raise it with {OptionNames.MaxTiles}") { Option = OptionNames.MaxTiles };

    /// <summary>Rows of an [N, D] or [1, N, D] matrix (the reader's two layouts).</summary>
    private static long RowsOf(long[] shape) => shape.Length == 3 && shape[0] == 1 ? shape[1] : shape[0];

    private static long Bytes(long[] dims, int elementSize)
    {
        long total = elementSize;
        foreach (var d in dims)
            total = d != 0 && total > long.MaxValue / d ? long.MaxValue : total * d;
        return total;
    }

    private static long SaturatingAdd(long a, long b) => a > long.MaxValue - b ? long.MaxValue : a + b;
}
