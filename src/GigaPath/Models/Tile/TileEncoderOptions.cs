using static TorchSharp.torch;

namespace GigaPath.Models.Tile;

/// <summary>Where and in which precision the tile encoder runs, and how strictly its checkpoint is matched.</summary>
public sealed record TileEncoderOptions
{
    /// <summary>cpu (default) or cuda.</summary>
    public Device Device { get; init; } = CPU;

    /// <summary>float32 (default, exact), bfloat16 (about 4× faster on CPUs with AVX-512 BF16) or float16 (GPU only).</summary>
    public ScalarType DType { get; init; } = ScalarType.Float32;

    /// <summary>Ignore checkpoint tensors the model does not have instead of failing.</summary>
    public bool AllowUnexpectedKeys { get; init; }
}
