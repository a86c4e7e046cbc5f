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
            byte[] pickle;
            try
            {
                using var s = pkl.Open();
                using var ms = new MemoryStream();
                s.CopyTo(ms);
                pickle = ms.ToArray();
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
        if (needed > entry.Length)
            throw new WeightFormatException(
                $"{Source}: tensor '{name}' {TensorDTypes.Code(t.DType)} shape [{string.Join(", ", t.Shape)}] stride [{string.Join(", ", t.Stride)}] " +
                $"offset {t.Offset} needs {needed} bytes of storage '{entry.FullName}', which has {entry.Length} (truncated or corrupt checkpoint?)");
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
        return _zip.GetEntry(entryName)
            ?? throw new WeightFormatException($"{Source}: tensor '{name}' refers to storage '{entryName}', which is missing from the archive");
    }

    public void Dispose() => _zip.Dispose();
}
