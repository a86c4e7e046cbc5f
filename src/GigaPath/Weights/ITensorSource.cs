using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Weights;

/// <summary>
/// A read-only, named collection of tensors on disk: a safetensors file, a sharded safetensors checkpoint or a
/// PyTorch checkpoint. The strict loader and every model loader read through this, so the format is chosen once.
/// </summary>
public interface ITensorSource : IDisposable
{
    /// <summary>Where the tensors come from, for error messages.</summary>
    string Description { get; }

    /// <summary>Names of every stored tensor, in file order.</summary>
    IReadOnlyCollection<string> Names { get; }

    /// <summary>Whether a tensor named <paramref name="name"/> is stored.</summary>
    bool Contains(string name);

    /// <summary>Dtype and shape of <paramref name="name"/>; throws <see cref="WeightFormatException"/> naming the key when absent.</summary>
    TensorInfo GetInfo(string name);

    /// <summary>A new CPU tensor with the stored values, converted to <paramref name="dtype"/> when given. The caller owns it.</summary>
    Tensor Load(string name, ScalarType? dtype = null);

    /// <summary>Copies the stored values into <paramref name="destination"/> (same element count), converting dtype and device as needed.</summary>
    void CopyInto(string name, Tensor destination);
}

internal static class TensorSourceExtensions
{
    /// <summary>Reads a tensor as a flat float array with its shape (any float or integer dtype is converted).</summary>
    public static (float[] Data, long[] Shape) ReadFloats(this ITensorSource source, string name)
    {
        var info = source.GetInfo(name);
        if (info.ElementCount > Array.MaxLength)
            throw new WeightFormatException($"{source.Description}: '{name}' holds {info.ElementCount} values, more than one array can hold");
        // Straight into the array (a tensor over its memory), not through a native copy: for a slide's features that
        // copy is as large as the array, and once freed it would stay in malloc's heap for the rest of the process.
        var data = GC.AllocateUninitializedArray<float>((int)info.ElementCount);
        if (data.Length > 0)
        {
            using var scope = torch.NewDisposeScope();
            source.CopyInto(name, torch.from_array(data));
        }
        return (data, info.Shape);
    }

    /// <summary>Reads a tensor as a flat long array with its shape.</summary>
    public static (long[] Data, long[] Shape) ReadLongs(this ITensorSource source, string name)
    {
        using var scope = torch.NewDisposeScope();
        var t = source.Load(name, ScalarType.Int64);
        return (t.data<long>().ToArray(), t.shape);
    }

    /// <summary>Reads a uint8 tensor as bytes with its shape.</summary>
    public static (byte[] Data, long[] Shape) ReadBytes(this ITensorSource source, string name)
    {
        using var scope = torch.NewDisposeScope();
        var t = source.Load(name, ScalarType.Byte);
        return (t.data<byte>().ToArray(), t.shape);
    }
}
