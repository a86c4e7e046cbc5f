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
    public static Tensor ReadTensor(byte[] bytes, string source = "torch.save data")
    {
        using var archive = TorchZipArchive.Open(new MemoryStream(bytes, writable: false), source);
        if (archive.Root is not PickledTensor t)
            throw new WeightFormatException($"{source}: holds {SafeUnpickler.Describe(archive.Root)}, not a single tensor");
        return archive.LoadTensor("tensor", t, null);
    }

    /// <summary>The tensor in <paramref name="bytes"/> as float32 values (converted when stored otherwise) and its shape.</summary>
    public static (float[] Data, long[] Shape) ReadFloats(byte[] bytes, string source = "torch.save data")
    {
        using var t = ReadTensor(bytes, source);
        using var f = t.to_type(ScalarType.Float32);
        return (f.data<float>().ToArray(), f.shape);
    }
}
