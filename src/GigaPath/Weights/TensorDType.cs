using static TorchSharp.torch;

namespace GigaPath.Weights;

/// <summary>The dtypes a safetensors file may hold, with their codes, sizes and TorchSharp equivalents.</summary>
public enum TensorDType
{
    /// <summary>float64.</summary>
    F64,
    /// <summary>float32.</summary>
    F32,
    /// <summary>float16.</summary>
    F16,
    /// <summary>bfloat16.</summary>
    BF16,
    /// <summary>int64.</summary>
    I64,
    /// <summary>int32.</summary>
    I32,
    /// <summary>int16.</summary>
    I16,
    /// <summary>int8.</summary>
    I8,
    /// <summary>uint8.</summary>
    U8,
    /// <summary>bool (one byte).</summary>
    Bool,
}

internal static class TensorDTypes
{
    public static int SizeOf(TensorDType d) => d switch
    {
        TensorDType.F64 or TensorDType.I64 => 8,
        TensorDType.F32 or TensorDType.I32 => 4,
        TensorDType.F16 or TensorDType.BF16 or TensorDType.I16 => 2,
        _ => 1,
    };

    public static string Code(TensorDType d) => d == TensorDType.Bool ? "BOOL" : d.ToString();

    public static bool TryParse(string code, out TensorDType d)
    {
        switch (code)
        {
            case "F64": d = TensorDType.F64; return true;
            case "F32": d = TensorDType.F32; return true;
            case "F16": d = TensorDType.F16; return true;
            case "BF16": d = TensorDType.BF16; return true;
            case "I64": d = TensorDType.I64; return true;
            case "I32": d = TensorDType.I32; return true;
            case "I16": d = TensorDType.I16; return true;
            case "I8": d = TensorDType.I8; return true;
            case "U8": d = TensorDType.U8; return true;
            case "BOOL": d = TensorDType.Bool; return true;
            default: d = default; return false;
        }
    }

    public static ScalarType ToScalarType(TensorDType d) => d switch
    {
        TensorDType.F64 => ScalarType.Float64,
        TensorDType.F32 => ScalarType.Float32,
        TensorDType.F16 => ScalarType.Float16,
        TensorDType.BF16 => ScalarType.BFloat16,
        TensorDType.I64 => ScalarType.Int64,
        TensorDType.I32 => ScalarType.Int32,
        TensorDType.I16 => ScalarType.Int16,
        TensorDType.I8 => ScalarType.Int8,
        TensorDType.U8 => ScalarType.Byte,
        TensorDType.Bool => ScalarType.Bool,
        _ => throw new ArgumentOutOfRangeException(nameof(d)),
    };

    public static TensorDType FromScalarType(ScalarType s) => s switch
    {
        ScalarType.Float64 => TensorDType.F64,
        ScalarType.Float32 => TensorDType.F32,
        ScalarType.Float16 => TensorDType.F16,
        ScalarType.BFloat16 => TensorDType.BF16,
        ScalarType.Int64 => TensorDType.I64,
        ScalarType.Int32 => TensorDType.I32,
        ScalarType.Int16 => TensorDType.I16,
        ScalarType.Int8 => TensorDType.I8,
        ScalarType.Byte => TensorDType.U8,
        ScalarType.Bool => TensorDType.Bool,
        _ => throw new WeightFormatException($"dtype {s} cannot be stored in safetensors"),
    };
}

/// <summary>Name, dtype and shape of one stored tensor.</summary>
public sealed record TensorInfo(string Name, TensorDType DType, long[] Shape)
{
    /// <summary>Number of elements: the product of the shape.</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);
    /// <summary>Bytes the tensor's data takes.</summary>
    public long ByteLength => ElementCount * TensorDTypes.SizeOf(DType);
    /// <summary>The shape as text, e.g. "[2, 48]".</summary>
    public string ShapeText => "[" + string.Join(", ", Shape) + "]";
}
