using static TorchSharp.torch;

namespace GigaPath.Models;

/// <summary>
/// Where and in which precision an encoder runs, and how strictly its checkpoint is matched: the one options type
/// that <see cref="Tile.TileEncoder"/> and <see cref="Slide.SlideEncoder"/> both take. The slide encoder also accepts
/// <see cref="Slide.SlideEncoderOptions"/>, which adds its attention settings.
/// </summary>
public record EncoderOptions
{
    /// <summary>
    /// <c>torch.CPU</c> (default) or a CUDA device (CUDA needs the CUDA TorchSharp backend and a GPU). Prefer
    /// <c>DeviceSelection.ParseDevice("cuda")</c> (or "cuda:N"): it says clearly when CUDA is not available, whereas
    /// TorchSharp's own <c>torch.CUDA</c> property throws an <see cref="InvalidOperationException"/> with an empty
    /// trace on a CPU build before this library is called. Any unusable device reaching an encoder is refused with a
    /// <see cref="GigaPathException"/> that names the build's backend.
    /// </summary>
    public Device Device { get; init; } = CPU;

    /// <summary>
    /// Precision of the weights and matrix products: <c>Float32</c> (default; matches the reference to about 1e-5),
    /// <c>BFloat16</c> (several times faster on CPUs with AVX-512 BF16 and on GPUs) or <c>Float16</c> (CUDA only).
    /// Inputs are always float32 and outputs always float32 on the CPU, whatever this is.
    /// </summary>
    public ScalarType DType { get; init; } = ScalarType.Float32;

    /// <summary>
    /// Run bfloat16 on a CPU without bfloat16 matrix hardware (no AVX512_BF16, no AMX) anyway. Off by default: there
    /// libtorch emulates bfloat16 matrix products, about 300× slower than float32, and the encoders refuse it.
    /// </summary>
    public bool AllowSlowDType { get; init; }

    /// <summary>
    /// Ignore checkpoint tensors the model does not have instead of failing (missing model tensors are always an
    /// error). Off by default, so a wrong checkpoint is never half-loaded silently.
    /// </summary>
    public bool AllowUnexpectedKeys { get; init; }
}
