using System.IO.Compression;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Weights;

/// <summary>
/// The zip container of <c>torch.save</c> (PyTorch 1.6+): one <c>&lt;archive&gt;/data.pkl</c> pickle plus
/// <c>&lt;archive&gt;/data/&lt;key&gt;</c> storages. Shared by <see cref="PyTorchCheckpoint"/> (a state dict) and
/// <see cref="TorchSaveReader"/> (a bare tensor); nothing in the pickle is executed.
/// </summary>
internal sealed class TorchZipArchive : IDisposable
{
    private readonly ZipArchive _zip;
    private readonly string _prefix;

    /// <summary>
    /// Most bytes a <c>data.pkl</c> may hold. A state dict's pickle is a few hundred KB (the tensors live in the storage
    /// records); a valid pickle followed by gigabytes of deflated zeros used to be read whole (4.2 GiB, then "Stream
    /// was too long").
    /// </summary>
    public const long MaxPickleBytes = 64L << 20;

    /// <summary>
    /// Most uncompressed bytes a compressed record may declare per compressed byte, once over
    /// <see cref="CompressedRecordFloor"/>. torch.save stores its records uncompressed; tensors recompressed by a zip
    /// tool shrink a few percent, while 3.2 GB of zeros deflate to 3.1 MB (1032:1).
    /// </summary>
    public const long MaxCompressionRatio = 100;

    /// <summary>Compressed records up to this size are read whatever their ratio (zero-filled biases compress well).</summary>
    public const long CompressedRecordFloor = 16L << 20;

    /// <summary>
    /// Most bytes a tensor may materialise beyond the storage bytes it reads: broadcast (stride 0) or overlapping
    /// strides repeat storage elements, so a 4-byte storage viewed as [2500000, 192] with strides [0, 0] is 1.9 GB.
    /// </summary>
    public const long MaxExpandedBytes = 64L << 20;

    public string Source { get; }

    /// <summary>The unpickled root object: a <see cref="PickleDict"/>, a <see cref="PickledTensor"/>, ...</summary>
    public object? Root { get; }

    private TorchZipArchive(string source, ZipArchive zip, string prefix, object? root)
    {
        Source = source;
        _zip = zip;
        _prefix = prefix;
        Root = root;
    }

    /// <summary>Opens the archive in <paramref name="stream"/> (which it then owns) and unpickles its data.pkl.</summary>
    public static TorchZipArchive Open(Stream stream, string source)
    {
        ZipArchive zip;
        try
        {
            zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: false);
        }
        catch (InvalidDataException)
        {
            stream.Dispose();
            throw new WeightFormatException($"{source}: not a PyTorch zip checkpoint (legacy pre-1.6 torch.save files and other formats are not supported; re-save with torch.save in a current PyTorch or convert to safetensors)");
        }
        try
        {
            var pkl = zip.Entries.FirstOrDefault(e => e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal) && e.FullName.Count(c => c == '/') == 1)
                ?? throw new WeightFormatException($"{source}: zip file has no <archive>/data.pkl; not a torch.save checkpoint");
            string prefix = pkl.FullName[..^"data.pkl".Length];
            CheckCompression(source, pkl, "the pickle");
            if (pkl.Length > MaxPickleBytes)
                throw new BudgetExceededException($"{source}: record '{pkl.FullName}' declares a pickle of {pkl.Length:N0} bytes; at most {MaxPickleBytes:N0} are read (a state dict's pickle is kilobytes: its tensors are separate records)");
            byte[] pickle;
            try
            {
                pickle = ReadAtMost(pkl, MaxPickleBytes, source);
            }
            catch (InvalidDataException e)
            {
                throw new WeightFormatException($"{source}: record '{pkl.FullName}' of the zip is corrupt ({e.Message})", e);
            }
            var root = new SafeUnpickler(source).Load(pickle);
            return new TorchZipArchive(source, zip, prefix, root);
        }
        catch
        {
            zip.Dispose();
            throw;
        }
    }

    /// <summary>The record's bytes, refusing (before holding more) a record that yields over <paramref name="limit"/> whatever its header declares.</summary>
    private static byte[] ReadAtMost(ZipArchiveEntry entry, long limit, string source)
    {
        using var s = entry.Open();
        using var ms = new MemoryStream();
        var buffer = new byte[1 << 16];
        int n;
        while ((n = s.Read(buffer, 0, buffer.Length)) > 0)
        {
            if (ms.Length + n > limit)
                throw new BudgetExceededException($"{source}: record '{entry.FullName}' holds more than {limit:N0} bytes (its header declares {entry.Length:N0}); at most {limit:N0} are read");
            ms.Write(buffer, 0, n);
        }
        return ms.ToArray();
    }

    /// <summary>Refuses a compressed record that would expand more than <see cref="MaxCompressionRatio"/>:1 past <see cref="CompressedRecordFloor"/>.</summary>
    private static void CheckCompression(string source, ZipArchiveEntry entry, string what)
    {
        if (entry.Length <= CompressedRecordFloor || entry.Length <= entry.CompressedLength) return;
        if (entry.CompressedLength == 0 || entry.Length / entry.CompressedLength > MaxCompressionRatio)
            throw new BudgetExceededException(
                $"{source}: record '{entry.FullName}' ({what}) declares {entry.Length:N0} bytes compressed into {entry.CompressedLength:N0} " +
                $"({(entry.CompressedLength == 0 ? "∞" : (entry.Length / entry.CompressedLength).ToString("N0"))}:1); compressed records may expand at most " +
                $"{MaxCompressionRatio}:1 beyond {CompressedRecordFloor >> 20} MiB (torch.save stores its records uncompressed)");
    }

    /// <summary>A new CPU tensor holding the values <paramref name="t"/> describes; <paramref name="name"/> is for messages.</summary>
    public Tensor LoadTensor(string name, PickledTensor t, ScalarType? dtype)
    {
        var stored = TensorDTypes.ToScalarType(t.DType);
        Tensor result;
        if (t.IsContiguous)
        {
            result = torch.empty(t.Shape, stored);
            ReadStorage(name, t, t.Offset, result);
        }
        else
        {
            // Strided view into a larger storage: read the storage, then gather the view.
            long needed = t.StorageElementsNeeded();
            using var storage = torch.empty(new[] { needed }, stored);
            ReadStorage(name, t, 0, storage);
            using var view = storage.as_strided(t.Shape, t.Stride, t.Offset);
            result = view.clone();
        }
        if (dtype is { } target && target != stored)
        {
            var converted = result.to_type(target);
            result.Dispose();
            return converted;
        }
        return result;
    }

    /// <summary>
    /// Fails, naming the tensor, when <paramref name="t"/>'s storage record is missing or smaller than the tensor's
    /// shape and strides need: checked when the checkpoint is opened, before anything is allocated for it.
    /// </summary>
    public void CheckStorage(string name, PickledTensor t)
    {
        var entry = Entry(name, t);
        long needed = t.StorageBytesNeeded();
        string what = $"tensor '{name}' {TensorDTypes.Code(t.DType)} shape [{string.Join(", ", t.Shape)}] stride [{string.Join(", ", t.Stride)}] offset {t.Offset}";
        if (needed > entry.Length)
            throw new WeightFormatException(
                $"{Source}: {what} needs {needed} bytes of storage '{entry.FullName}', which has {entry.Length} (truncated or corrupt checkpoint?)");
        // Every size here fits 64 bits: PickledTensor.Check refused the rest when the pickle was read.
        long bytes = t.Shape.Aggregate(1L, (a, b) => a * b) * TensorDTypes.SizeOf(t.DType);
        long reached = needed - t.Offset * TensorDTypes.SizeOf(t.DType);
        if (bytes > reached && bytes > MaxExpandedBytes)
            throw new BudgetExceededException(
                $"{Source}: {what} materialises {bytes:N0} bytes from {Math.Max(reached, 0):N0} bytes of storage (broadcast or overlapping strides); " +
                $"at most {MaxExpandedBytes >> 20} MiB are expanded beyond the storage read");
    }

    /// <summary>
    /// Reads storage bytes starting <paramref name="elementOffset"/> elements in, filling the contiguous CPU tensor
    /// <paramref name="destination"/> (in pieces: a tensor may be 2 GiB or more).
    /// </summary>
    public void ReadStorage(string name, PickledTensor t, long elementOffset, Tensor destination)
    {
        var entry = Entry(name, t);
        long skip = elementOffset * TensorDTypes.SizeOf(t.DType);
        long length = TensorChunks.ByteLength(destination);
        if (skip + length > entry.Length)
            throw new WeightFormatException($"{Source}: tensor '{name}' needs bytes [{skip}, {skip + length}) of storage '{entry.FullName}', which has {entry.Length} (truncated checkpoint?)");
        try
        {
            using var s = entry.Open();
            var scratch = new byte[1 << 16];
            while (skip > 0)
            {
                int n = s.Read(scratch, 0, (int)Math.Min(skip, scratch.Length));
                if (n <= 0) throw new WeightFormatException($"{Source}: storage '{entry.FullName}' ended early");
                skip -= n;
            }
            TensorChunks.ForEach(destination, (chunk, _) => s.ReadExactly(chunk));
        }
        catch (Exception e) when (e is InvalidDataException or EndOfStreamException)
        {
            throw new WeightFormatException($"{Source}: storage '{entry.FullName}' of tensor '{name}' is corrupt ({e.Message})", e);
        }
    }

    private ZipArchiveEntry Entry(string name, PickledTensor t)
    {
        var entryName = _prefix + "data/" + t.StorageKey;
        var entry = _zip.GetEntry(entryName)
            ?? throw new WeightFormatException($"{Source}: tensor '{name}' refers to storage '{entryName}', which is missing from the archive");
        CheckCompression(Source, entry, $"storage of tensor '{name}'");
        return entry;
    }

    public void Dispose() => _zip.Dispose();
}
