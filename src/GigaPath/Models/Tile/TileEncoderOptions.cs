using static TorchSharp.torch;

namespace GigaPath.Models.Tile;

/// <summary>Where and in which precision the tile encoder runs, and how strictly its checkpoint is matched.</summary>
public sealed record TileEncoderOptions
{
    /// <summary>cpu (default) or cuda.</summary>
    public Device Device { get; init; } = CPU;

    /// <summary>
    /// float32 (default, exact), bfloat16 (about 3.5× faster on CPUs with AVX512_BF16 or AMX, refused on CPUs without
    /// them, where it is ~300× slower) or float16 (GPU only). <c>DeviceSelection.ParseDType("auto", device)</c> picks.
    /// </summary>
    public ScalarType DType { get; init; } = ScalarType.Float32;

    /// <summary>Run bfloat16 on a CPU without bfloat16 matrix hardware anyway (emulated: hundreds of times slower).</summary>
    public bool AllowSlowDType { get; init; }

    /// <summary>Ignore checkpoint tensors the model does not have instead of failing.</summary>
    public bool AllowUnexpectedKeys { get; init; }
}
