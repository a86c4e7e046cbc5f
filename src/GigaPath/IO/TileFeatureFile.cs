using System.Globalization;
using GigaPath.Weights;
using TorchSharp;
using static TorchSharp.torch;
using GigaPath.Models.Slide;

namespace GigaPath.IO;

/// <summary>
/// Reads and writes per-slide tile-feature files: safetensors (embeddings under <c>features</c>,
/// <c>tile_embeddings</c> or <c>embeddings</c>, [N, D] or [1, N, D]; <c>coords</c> [N, 2] or [1, N, 2]) and HDF5 in
/// the CLAM / TRIDENT layout (<c>features</c> and <c>coords</c> datasets); reads CLAM's <c>pt_files</c> too
/// (<c>torch.save</c> of the bare [N, D] feature tensor, no coordinates).
/// </summary>
public static class TileFeatureFile
{
    /// <summary>Tensor names accepted for the embeddings, in order of preference.</summary>
    public static readonly IReadOnlyList<string> FeatureNames = ["features", "tile_embeddings", "embeddings"];

    /// <summary>
    /// Reads the tile features of one slide from a safetensors file or a CLAM/TRIDENT-style HDF5 (.h5) file (features
    /// [N, D] or [1, N, D], coords [N, 2]), refusing (before reading any data) one over
    /// <see cref="TileFeatureBudget.Default"/>; errors name the file and the dataset.
    /// </summary>
    public static TileFeatures Read(string path) => Read(path, TileFeatureBudget.Default);

    /// <summary>Reads a tile-feature file like <see cref="Read(string)"/>, refusing (before reading any data) one over <paramref name="budget"/>.</summary>
    public static TileFeatures Read(string path, TileFeatureBudget budget)
    {
        ArgumentNullException.ThrowIfNull(budget);
        if (!File.Exists(path))
            throw new GigaPathException($"{path}: tile-feature file not found");
        budget.Check(path);
        var ext = Path.GetExtension(path).ToLowerInvariant();
        return ext switch
        {
            ".safetensors" => ReadSafetensors(path),
            ".h5" or ".hdf5" or ".hdf" => TileFeatureH5.Read(path),
            ".pt" => ReadTorchTensor(path, budget),
            _ => SniffAndRead(path),
        };
    }

    /// <summary>
    /// Reads a tile-feature file from <paramref name="stream"/> (to its end), in memory, without a temporary file: its
    /// format is found from its first bytes (HDF5, CLAM's <c>torch.save</c> zip, else safetensors), and it is held to
    /// <paramref name="budget"/> before its data is read, as <see cref="Read(string, TileFeatureBudget)"/> does.
    /// A stream that is not seekable, or not at its start, is first copied into memory. Errors name
    /// <paramref name="name"/> (the request, the upload) where they would name the file.
    /// </summary>
    /// <param name="stream">The file's bytes.</param>
    /// <param name="name">What the stream is, for messages; <see cref="TileFeatures.Source"/> of the result.</param>
    /// <param name="budget">The limits; null for <see cref="TileFeatureBudget.Default"/>.</param>
    /// <exception cref="GigaPathException">Malformed data (<see cref="BudgetExceededException"/> over the budget), naming <paramref name="name"/>.</exception>
    public static TileFeatures Read(Stream stream, string name, TileFeatureBudget? budget = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(name);
        if (stream.CanSeek && stream.Position == 0)
            return ReadSeekable(stream, name, budget ?? TileFeatureBudget.Default);
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        copy.Position = 0;
        return ReadSeekable(copy, name, budget ?? TileFeatureBudget.Default);
    }

    /// <summary>
    /// <see cref="Read(Stream, string, TileFeatureBudget?)"/> that copies <paramref name="stream"/> into memory
    /// asynchronously first (a request body, a download), then reads it.
    /// </summary>
    /// <param name="stream">The file's bytes, read to its end.</param>
    /// <param name="name">What the stream is, for messages.</param>
    /// <param name="budget">The limits; null for <see cref="TileFeatureBudget.Default"/>.</param>
    /// <param name="cancellationToken">Stops the copy.</param>
    public static async Task<TileFeatures> ReadAsync(Stream stream, string name, TileFeatureBudget? budget = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(name);
        using var copy = new MemoryStream();
        await stream.CopyToAsync(copy, cancellationToken).ConfigureAwait(false);
        copy.Position = 0;
        cancellationToken.ThrowIfCancellationRequested();
        return ReadSeekable(copy, name, budget ?? TileFeatureBudget.Default);
    }

    /// <summary>The tile features in <paramref name="stream"/>, seekable and at position 0, by its first bytes.</summary>
    private static TileFeatures ReadSeekable(Stream stream, string name, TileFeatureBudget budget)
    {
        Span<byte> head = stackalloc byte[8];
        int n = stream.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        stream.Position = 0;
        if (n == 8 && head.SequenceEqual(TileFeatureH5.Signature))
        {
            using (var file = TileFeatureH5.Open(stream, name))
                budget.CheckHdf5(name, stream.Length, file);
            stream.Position = 0;
            return TileFeatureH5.Read(stream, name);
        }
        var bytes = AllBytes(stream);
        // The zip reader disposes the stream it reads: it gets its own view of the bytes, never the caller's stream.
        if (n >= 4 && head[..4].SequenceEqual("PK\u0003\u0004"u8))
            return ReadTorchTensor(new MemoryStream(bytes, writable: false), name, budget);
        using var safetensors = AsFeatureFile(name, () => SafeTensorsFile.Open(bytes, name));
        budget.CheckSafetensors(name, safetensors);
        return ReadSafetensors(safetensors, name);
    }

    /// <summary>The bytes of <paramref name="stream"/> from position 0: a memory stream's own buffer when it holds exactly them, else a copy.</summary>
    private static byte[] AllBytes(Stream stream)
    {
        if (stream is MemoryStream memory && memory.TryGetBuffer(out var buffer) && buffer.Offset == 0 && buffer.Count == buffer.Array!.Length)
            return buffer.Array;
        using var copy = new MemoryStream();
        stream.CopyTo(copy);
        return copy.ToArray();
    }

    private static TileFeatures SniffAndRead(string path)
    {
        Span<byte> head = stackalloc byte[9];
        int read;
        using (var fs = File.OpenRead(path))
            read = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        if (read >= 8 && head[..8].SequenceEqual(TileFeatureH5.Signature))
            return TileFeatureH5.Read(path);
        // A safetensors file starts with its header's length (8 bytes, little-endian) and then the JSON header's '{'.
        if (read == 9 && head[8] == (byte)'{')
            return ReadSafetensors(path);
        throw new FeatureFileFormatException(
            $"{path}: not a tile-feature file (neither safetensors nor HDF5; .pt files are read by their extension); " +
            "expected embeddings under one of " + string.Join(", ", FeatureNames) + " with coords", path);
    }

    /// <summary>Runs a reader, reporting a malformed container as a malformed tile-feature file (it was given as one).</summary>
    private static T AsFeatureFile<T>(string path, Func<T> read)
    {
        try
        {
            return read();
        }
        catch (WeightFormatException e)
        {
            throw new FeatureFileFormatException(e.Message, path, e);
        }
    }

    /// <summary>
    /// CLAM's <c>pt_files/&lt;slide&gt;.pt</c>: <c>torch.save</c> of the [N, D] features alone (read without executing
    /// pickle code). It holds no coordinates, so it serves the heads that need none (attention pooling, linear probe).
    /// </summary>
    public static TileFeatures ReadTorchTensor(string path) => ReadTorchTensor(path, TileFeatureBudget.Default);

    /// <summary>CLAM's <c>.pt</c> features (see <see cref="ReadTorchTensor(string)"/>), the declared shape held to <paramref name="budget"/> before any data is read.</summary>
    public static TileFeatures ReadTorchTensor(string path, TileFeatureBudget budget)
    {
        ArgumentNullException.ThrowIfNull(budget);
        return ReadTorchTensor(File.OpenRead(path), path, budget);
    }

    private static TileFeatures ReadTorchTensor(Stream stream, string path, TileFeatureBudget budget)
    {
        var (data, shape) = AsFeatureFile(path, () => TorchSaveReader.ReadFloats(stream, path, s => budget.CheckShape(path, "tensor", s)));
        var (count, dim) = Matrix(path, "tensor", shape, null);
        return new TileFeatures(data, count, dim, null, new Dictionary<string, object>(), path).Validate();
    }

    /// <summary>Reads tile features from a safetensors file (one of <see cref="FeatureNames"/>, optional <c>coords</c> and <c>coords_tiling</c>).</summary>
    public static TileFeatures ReadSafetensors(string path)
    {
        using var file = AsFeatureFile(path, () => SafeTensorsFile.Open(path));
        return ReadSafetensors(file, path);
    }

    private static TileFeatures ReadSafetensors(SafeTensorsFile file, string path)
    {
        var name = FeatureNames.FirstOrDefault(file.Contains)
            ?? throw new GigaPathException($"{path}: no tile embeddings (expected a tensor named {string.Join(", ", FeatureNames)}; file has: {string.Join(", ", file.Names.Take(12))})");
        var shape = file.GetInfo(name).Shape;
        var (count, dim) = Matrix(path, name, shape, null);
        var features = count == 0 ? [] : file.ReadFloats(name).Data;
        double[]? coords = file.Contains("coords") ? ReadCoords(file, path, "coords", name, count) : null;
        double[]? tiling = file.Contains(TileFeatureH5.TilingCoordsName) ? ReadCoords(file, path, TileFeatureH5.TilingCoordsName, name, count) : null;
        var attributes = file.Metadata.ToDictionary(kv => kv.Key, kv => (object)kv.Value);
        return new TileFeatures(features, count, dim, coords, attributes, path) { TilingCoords = tiling }.Validate();
    }

    private static double[] ReadCoords(SafeTensorsFile file, string path, string name, string featureName, int count)
    {
        using var scope = torch.NewDisposeScope();
        var c = file.Load(name, ScalarType.Float64);
        var (cn, _) = Matrix(path, name, c.shape, 2);
        if (cn != count)
            throw new GigaPathException($"{path}: '{featureName}' holds {count} tiles but '{name}' holds {cn}");
        return cn == 0 ? [] : c.contiguous().data<double>().ToArray();
    }

    /// <summary>Writes features (float32 [N, D]) and coords ([N, 2], int64 when every value is integral) atomically.</summary>
    public static void WriteSafetensors(string path, TileFeatures tiles, IDictionary<string, object>? attributes = null)
    {
        tiles.Validate();
        using var scope = torch.NewDisposeScope();
        var tensors = new List<KeyValuePair<string, Tensor>>
        {
            new("features", torch.tensor(tiles.Features, [tiles.Count, tiles.Dim])),
        };
        if (tiles.Coords is not null)
        {
            var c = torch.tensor(tiles.Coords, [tiles.Count, 2]);
            tensors.Add(new("coords", AllIntegral(tiles.Coords) ? c.to_type(ScalarType.Int64) : c));
        }
        if (tiles.TilingCoords is not null)
        {
            var c = torch.tensor(tiles.TilingCoords, [tiles.Count, 2]);
            tensors.Add(new(TileFeatureH5.TilingCoordsName, AllIntegral(tiles.TilingCoords) ? c.to_type(ScalarType.Int64) : c));
        }
        var metadata = Merge(tiles.Attributes, attributes)
            .ToDictionary(kv => kv.Key, kv => FormatAttribute(kv.Value));
        SafeTensorsWriter.Write(path, tensors, metadata);
    }

    /// <summary>Writes a CLAM-layout HDF5 file atomically (see <see cref="TileFeatureH5.Write"/>).</summary>
    public static void WriteH5(string path, TileFeatures tiles, IDictionary<string, object>? attributes = null) =>
        TileFeatureH5.Write(path, tiles, Merge(tiles.Attributes, attributes));

    internal static (int Count, int Dim) Matrix(string path, string name, long[] shape, int? width)
    {
        var expected = width is { } w ? $"[N, {w}] or [1, N, {w}]" : "[N, D] or [1, N, D]";
        long[] s = shape.Length == 3 && shape[0] == 1 ? shape[1..] : shape;
        if (s.Length != 2 || (width is { } ww && s[1] != ww))
            throw new GigaPathException($"{path}: '{name}' has shape [{string.Join(", ", shape)}], expected {expected}");
        if (s[0] > int.MaxValue || s[1] > int.MaxValue || s[0] * s[1] > Array.MaxLength)
            throw new GigaPathException($"{path}: '{name}' shape [{string.Join(", ", shape)}] is too large");
        return ((int)s[0], (int)s[1]);
    }

    internal static bool AllIntegral(double[] values) =>
        values.All(v => double.IsFinite(v) && v == Math.Floor(v) && Math.Abs(v) < 9.0e15);

    internal static Dictionary<string, object> Merge(IReadOnlyDictionary<string, object> a, IDictionary<string, object>? b)
    {
        var merged = new Dictionary<string, object>(a, StringComparer.Ordinal);
        if (b is not null)
            foreach (var (k, v) in b) merged[k] = v;
        return merged;
    }

    private static string FormatAttribute(object value) => value switch
    {
        string s => s,
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        float f => f.ToString("R", CultureInfo.InvariantCulture),
        IFormattable f => f.ToString(null, CultureInfo.InvariantCulture),
        System.Collections.IEnumerable e => "[" + string.Join(", ", e.Cast<object>().Select(FormatAttribute)) + "]",
        _ => value.ToString() ?? "",
    };
}
