using System.Buffers.Binary;
using GigaPath.Weights;
using PureHDF;
using GigaPath.Models.Slide;

namespace GigaPath.IO;

/// <summary>
/// HDF5 tile-feature files in the CLAM / TRIDENT layout: datasets <c>features</c> [N, D] (float32) and
/// <c>coords</c> [N, 2] (int64 level-0 x, y), with the patch attributes on the coords dataset, where both tools read
/// them (the whole-slide pipeline writes TRIDENT's and CLAM's, see docs/h5-attributes.md); this writer puts them on
/// the root group too. <c>coords_tiling</c> [N, 2] int64, when present, holds the tiling-resolution coordinates
/// (<see cref="TileFeatures.TilingCoords"/>). Datasets are chunked along the tile axis with an unlimited first dimension, as
/// CLAM's and TRIDENT's <c>save_hdf5</c>/<c>save_h5</c> write them, so their appends (mode 'a') work on our files
/// (written by <see cref="Hdf5Writer"/>).
/// </summary>
internal static class TileFeatureH5
{
    public const string TilingCoordsName = "coords_tiling";

    public static ReadOnlySpan<byte> Signature => [0x89, (byte)'H', (byte)'D', (byte)'F', 0x0d, 0x0a, 0x1a, 0x0a];

    /// <summary>The datasets the reader uses, in the order it reads them.</summary>
    public static readonly IReadOnlyList<string> DatasetNames = ["features", "coords", TilingCoordsName];

    /// <summary>
    /// An HDF5 feature file opened with PureHDF only after <see cref="Hdf5Structure"/> resolved and checked the links
    /// to <see cref="DatasetNames"/>: PureHDF is then given each dataset's hard-link path, so it never follows a soft
    /// or external link of the file.
    /// </summary>
    internal sealed class Opened(PureHDF.VOL.Native.NativeFile file, IReadOnlyDictionary<string, Hdf5Structure.DatasetFacts> sets, IReadOnlyList<string> rootNames,
        IReadOnlyDictionary<string, Dictionary<string, object>> bigEndianAttributes) : IDisposable
    {
        /// <summary>Big-endian numeric attributes of the root ("/") and of <c>coords</c>, which PureHDF cannot read (<see cref="Hdf5Structure.BigEndianAttributes"/>).</summary>
        public IReadOnlyDictionary<string, Dictionary<string, object>> BigEndianAttributes => bigEndianAttributes;
        public PureHDF.VOL.Native.NativeFile File => file;
        /// <summary>The datasets of <see cref="DatasetNames"/> the file has.</summary>
        public IReadOnlyDictionary<string, Hdf5Structure.DatasetFacts> Sets => sets;
        /// <summary>The root group's names when the file has no <c>features</c> (for the message), else empty.</summary>
        public IReadOnlyList<string> RootNames => rootNames;
        public IH5Dataset Dataset(string name) => file.Dataset(sets[name].HardPath);
        public void Dispose() => file.Dispose();
    }

    /// <summary>Opens <paramref name="path"/> for reading its tile features; refusals name the file and the dataset.</summary>
    public static Opened Open(string path) => Open(path, () => Hdf5Structure.Open(path), () => H5File.OpenRead(path));

    /// <summary>Opens the HDF5 file that the seekable <paramref name="stream"/> holds from position 0 (left open); <paramref name="name"/> stands for it in messages.</summary>
    public static Opened Open(Stream stream, string name) =>
        Open(name, () => Hdf5Structure.Open(stream, name), () =>
        {
            // PureHDF looks for the superblock from the stream's position; the structure check has moved it.
            stream.Position = 0;
            return H5File.Open(stream, leaveOpen: true);
        });

    private static Opened Open(string path, Func<Hdf5Structure> openStructure, Func<PureHDF.VOL.Native.NativeFile> openFile)
    {
        var sets = new Dictionary<string, Hdf5Structure.DatasetFacts>(StringComparer.Ordinal);
        IReadOnlyList<string> names = [];
        var bigEndian = new Dictionary<string, Dictionary<string, object>>(StringComparer.Ordinal);
        try
        {
            using var structure = openStructure();
            foreach (var name in DatasetNames)
                if (structure.Dataset(name) is { } facts) sets[name] = facts;
            if (!sets.ContainsKey("features")) names = structure.RootNames();
            bigEndian["/"] = structure.BigEndianAttributes(structure.RootAddress, "/");
            if (sets.TryGetValue("coords", out var coords)) bigEndian["coords"] = structure.BigEndianAttributes(coords.Address, "coords");
        }
        catch (Exception e) when (e is not GigaPathException)
        {
            throw new GigaPathException($"{path}: not a readable HDF5 file ({e.Message})", e);
        }
        try
        {
            return new Opened(openFile(), sets, names, bigEndian);
        }
        catch (Exception e)
        {
            throw new GigaPathException($"{path}: not a readable HDF5 file ({e.Message})", e);
        }
    }

    public static TileFeatures Read(string path)
    {
        using var file = Open(path);
        return Read(file, path);
    }

    /// <summary>The tile features of the HDF5 file that the seekable <paramref name="stream"/> holds; <paramref name="name"/> stands for it in messages.</summary>
    public static TileFeatures Read(Stream stream, string name)
    {
        using var file = Open(stream, name);
        return Read(file, name);
    }

    private static TileFeatures Read(Opened file, string path)
    {
        if (!file.Sets.TryGetValue("features", out var featureFacts))
            throw new GigaPathException($"{path}: no 'features' dataset (file has: {string.Join(", ", file.RootNames)})");
        // Every shape is checked before any data is read, so the sizes are known (and can be held to a budget) first.
        var (count, dim) = TileFeatureFile.Matrix(path, "features", featureFacts.Dims, null);
        var coordSet = CoordinateSet(file, path, "coords", count);
        var tilingSet = CoordinateSet(file, path, TilingCoordsName, count);

        try
        {
            var attributes = new Dictionary<string, object>(StringComparer.Ordinal);
            ReadAttributes(path, "/", file.File, file.BigEndianAttributes["/"], attributes);
            if (coordSet is not null) ReadAttributes(path, "coords", coordSet, file.BigEndianAttributes["coords"], attributes);
            var features = ReadAsFloats(path, "features", file.Dataset("features"), featureFacts);
            var coords = coordSet is null ? null : ReadAsDoubles(path, "coords", coordSet, file.Sets["coords"]);
            var tiling = tilingSet is null ? null : ReadAsDoubles(path, TilingCoordsName, tilingSet, file.Sets[TilingCoordsName]);
            return new TileFeatures(features, count, dim, coords, attributes, path) { TilingCoords = tiling, CoordsAreLevel0 = true }.Validate();
        }
        catch (Exception e) when (e is not GigaPathException and not OutOfMemoryException)
        {
            throw new GigaPathException($"{path}: the HDF5 data could not be read ({e.Message})", e);
        }
    }

    /// <summary>The [N, 2] dataset <paramref name="name"/> when the file has it, its row count checked against the features'.</summary>
    private static IH5Dataset? CoordinateSet(Opened file, string path, string name, int count)
    {
        if (!file.Sets.TryGetValue(name, out var facts)) return null;
        var (n, _) = TileFeatureFile.Matrix(path, name, facts.Dims, 2);
        if (n != count)
            throw new GigaPathException($"{path}: 'features' holds {count} tiles but '{name}' holds {n}");
        return file.Dataset(name);
    }

    public static void Write(string path, TileFeatures tiles, IReadOnlyDictionary<string, object> attributes)
    {
        tiles.Validate();
        var converted = attributes.Select(kv => KeyValuePair.Create(kv.Key, ToH5(kv.Key, kv.Value))).ToList();
        var datasets = new List<Hdf5Writer.Dataset> { new("features", tiles.Features, tiles.Count, tiles.Dim, ChunkRows(tiles.Count, tiles.Dim), []) };
        if (tiles.Coords is not null)
            datasets.Add(new("coords", CoordinateData(tiles.Coords), tiles.Count, 2, ChunkRows(tiles.Count, 2), converted));
        if (tiles.TilingCoords is not null)
            datasets.Add(new(TilingCoordsName, CoordinateData(tiles.TilingCoords), tiles.Count, 2, ChunkRows(tiles.Count, 2), []));
        AtomicFile.Write(path, s => Hdf5Writer.Write(s, converted, datasets));
    }

    /// <summary>Whole rows per chunk, about 256 KiB of float32 each (CLAM writes 32 rows per chunk, TRIDENT one).</summary>
    private static int ChunkRows(int rows, int width) => Math.Clamp(65536 / Math.Max(width, 1), 1, Math.Max(rows, 1));

    /// <summary>int64 when every value is integral (pixel positions), else float64.</summary>
    private static Array CoordinateData(double[] coords) =>
        TileFeatureFile.AllIntegral(coords) ? coords.Select(v => (long)v).ToArray() : coords;

    private static object ToH5(string key, object value) => value switch
    {
        string or int or long or double or float or bool => value,
        int[] or long[] or double[] or float[] or string[] => value,
        short s => (int)s,
        uint u => (long)u,
        _ => throw new GigaPathException($"attribute '{key}': values of type {value.GetType().Name} cannot be written to HDF5 (use numbers, strings or arrays of them)"),
    };

    private static float[] ReadAsFloats(string path, string name, IH5Dataset set, Hdf5Structure.DatasetFacts facts)
    {
        if (facts is { TypeClass: 1, TypeSize: 4, BigEndian: false })
            return set.Read<float[]>();
        if (facts is { TypeClass: 1, TypeSize: 4, BigEndian: true })
        {
            // PureHDF does not convert byte order: the raw bytes are read and swapped here.
            var raw = set.Read<byte[]>();
            var values = new float[raw.Length / 4];
            for (int i = 0; i < values.Length; i++) values[i] = BinaryPrimitives.ReadSingleBigEndian(raw.AsSpan(4 * i));
            return values;
        }
        return Array.ConvertAll(ReadAsDoubles(path, name, set, facts), v => (float)v);
    }

    private static double[] ReadAsDoubles(string path, string name, IH5Dataset set, Hdf5Structure.DatasetFacts facts)
    {
        if (facts.BigEndian) return ReadBigEndian(path, name, set, facts);
        var type = set.Type;
        return (type.Class, type.Size) switch
        {
            (H5DataTypeClass.FloatingPoint, 8) => set.Read<double[]>(),
            (H5DataTypeClass.FloatingPoint, 4) => Array.ConvertAll(set.Read<float[]>(), v => (double)v),
            (H5DataTypeClass.FloatingPoint, 2) => Array.ConvertAll(set.Read<Half[]>(), v => (double)v),
            (H5DataTypeClass.FixedPoint, 8) when type.FixedPoint.IsSigned => Array.ConvertAll(set.Read<long[]>(), v => (double)v),
            (H5DataTypeClass.FixedPoint, 8) => Array.ConvertAll(set.Read<ulong[]>(), v => (double)v),
            (H5DataTypeClass.FixedPoint, 4) when type.FixedPoint.IsSigned => Array.ConvertAll(set.Read<int[]>(), v => (double)v),
            (H5DataTypeClass.FixedPoint, 4) => Array.ConvertAll(set.Read<uint[]>(), v => (double)v),
            (H5DataTypeClass.FixedPoint, 2) when type.FixedPoint.IsSigned => Array.ConvertAll(set.Read<short[]>(), v => (double)v),
            (H5DataTypeClass.FixedPoint, 2) => Array.ConvertAll(set.Read<ushort[]>(), v => (double)v),
            (H5DataTypeClass.FixedPoint, 1) when type.FixedPoint.IsSigned => Array.ConvertAll(set.Read<sbyte[]>(), v => (double)v),
            (H5DataTypeClass.FixedPoint, 1) => Array.ConvertAll(set.Read<byte[]>(), v => (double)v),
            _ => throw UnsupportedType(path, name, facts),
        };
    }

    /// <summary>Big-endian numbers (h5py <c>&gt;f4</c>, <c>&gt;f8</c>, <c>&gt;i8</c> …), read raw and converted.</summary>
    private static double[] ReadBigEndian(string path, string name, IH5Dataset set, Hdf5Structure.DatasetFacts facts)
    {
        var convert = Hdf5Structure.BigEndianReader(facts.TypeClass, facts.TypeSize, facts.Signed) ?? throw UnsupportedType(path, name, facts);
        var raw = set.Read<byte[]>();
        var values = new double[raw.Length / facts.TypeSize];
        for (int i = 0; i < values.Length; i++) values[i] = convert(raw.AsSpan(i * facts.TypeSize, facts.TypeSize));
        return values;
    }

    private static GigaPathException UnsupportedType(string path, string name, Hdf5Structure.DatasetFacts facts) =>
        new($"{path}: dataset '{name}' has HDF5 type class {facts.TypeClass} of {facts.TypeSize} bytes; expected a float or integer type");

    /// <summary>Numbers, strings and 1-D arrays of them; other attribute types are skipped.</summary>
    private static void ReadAttributes(string path, string ownerName, IH5Object owner, IReadOnlyDictionary<string, object> bigEndian, Dictionary<string, object> into)
    {
        foreach (var a in owner.Attributes())
        {
            // PureHDF converts no byte order: big-endian numbers (h5py attrs of dtype '>i8') were decoded from the header.
            if (bigEndian.TryGetValue(a.Name, out var value))
            {
                into[a.Name] = value;
                continue;
            }
            try
            {
                ReadAttribute(a, into);
            }
            catch (Exception e) when (e is not GigaPathException and not OutOfMemoryException)
            {
                throw new GigaPathException($"{path}: attribute '{a.Name}' of '{ownerName}' could not be read ({e.Message})", e);
            }
        }
    }

    private static void ReadAttribute(IH5Attribute a, Dictionary<string, object> into)
    {
        bool scalar = a.Space.Type == H5DataspaceType.Scalar;
        object? value = (a.Type.Class, a.Type.Size) switch
        {
            (H5DataTypeClass.String, _) => scalar ? a.Read<string>() : a.Read<string[]>(),
            // h5py stores Python str attributes as variable-length strings (base type: 1-byte characters).
            (H5DataTypeClass.VariableLength, _) when a.Type.VariableLength.BaseType is { Class: H5DataTypeClass.String or H5DataTypeClass.FixedPoint, Size: 1 } =>
                scalar ? a.Read<string>() : a.Read<string[]>(),
            (H5DataTypeClass.FloatingPoint, 8) => scalar ? a.Read<double>() : a.Read<double[]>(),
            (H5DataTypeClass.FloatingPoint, 4) => scalar ? (double)a.Read<float>() : Array.ConvertAll(a.Read<float[]>(), v => (double)v),
            (H5DataTypeClass.FixedPoint, 8) when a.Type.FixedPoint.IsSigned => scalar ? a.Read<long>() : a.Read<long[]>(),
            (H5DataTypeClass.FixedPoint, 4) when a.Type.FixedPoint.IsSigned => scalar ? (long)a.Read<int>() : Array.ConvertAll(a.Read<int[]>(), v => (long)v),
            (H5DataTypeClass.FixedPoint, 1) => scalar ? (long)a.Read<byte>() : Array.ConvertAll(a.Read<byte[]>(), v => (long)v),
            _ => null,
        };
        if (value is not null) into[a.Name] = value;
    }
}
