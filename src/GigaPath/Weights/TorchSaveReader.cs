using static TorchSharp.torch;

namespace GigaPath.Weights;

/// <summary>
/// Reads the output of <c>torch.save(tensor)</c>: a zip whose pickle is a single tensor (what Azure ML's
/// Prov-GigaPath endpoint returns as <c>image_features</c>, and what <see cref="TorchSaveWriter"/> writes).
/// Nothing in the pickle is executed.
/// </summary>
internal static class TorchSaveReader
{
    /// <summary>The tensor in <paramref name="bytes"/> as a new CPU tensor; <paramref name="source"/> names it in errors.</summary>
    public static Tensor ReadTensor(byte[] bytes, string source = "torch.save data") =>
        ReadTensor(new MemoryStream(bytes, writable: false), source, null);

    /// <summary>
    /// The tensor in <paramref name="stream"/> (which it then owns) as a new CPU tensor. <paramref name="checkShape"/>
    /// sees the declared shape before anything is allocated for it; the storage and its strides are checked too
    /// (<see cref="TorchZipArchive.CheckStorage"/>).
    /// </summary>
    public static Tensor ReadTensor(Stream stream, string source, Action<long[]>? checkShape)
    {
        using var archive = TorchZipArchive.Open(stream, source);
        var t = SingleTensor(archive);
        checkShape?.Invoke(t.Shape);
        archive.CheckStorage("tensor", t);
        return archive.LoadTensor("tensor", t, null);
    }

    /// <summary>The shape of the single tensor in <paramref name="stream"/> (which it then owns), from the pickle alone.</summary>
    public static long[] DeclaredShape(Stream stream, string source)
    {
        using var archive = TorchZipArchive.Open(stream, source);
        return SingleTensor(archive).Shape;
    }

    /// <summary>The archive's root, which must be a single tensor.</summary>
    public static PickledTensor SingleTensor(TorchZipArchive archive) =>
        archive.Root as PickledTensor
        ?? throw new WeightFormatException($"{archive.Source}: holds {SafeUnpickler.Describe(archive.Root)}, not a single tensor");

    /// <summary>The tensor in <paramref name="bytes"/> as float32 values (converted when stored otherwise) and its shape.</summary>
    public static (float[] Data, long[] Shape) ReadFloats(byte[] bytes, string source = "torch.save data") =>
        ReadFloats(new MemoryStream(bytes, writable: false), source, null);

    /// <summary>The tensor in <paramref name="stream"/> as float32 values and its shape (see <see cref="ReadTensor(Stream, string, Action{long[]})"/>).</summary>
    public static (float[] Data, long[] Shape) ReadFloats(Stream stream, string source, Action<long[]>? checkShape)
    {
        using var t = ReadTensor(stream, source, checkShape);
        using var f = t.to_type(ScalarType.Float32);
        return (f.data<float>().ToArray(), f.shape);
    }
}
