using static TorchSharp.torch;

namespace GigaPath.Models.Slide;

/// <summary>How a slide encoder is placed and run.</summary>
public sealed record SlideEncoderOptions
{
    /// <summary>cpu (default) or a CUDA device; <see cref="Runtime.DeviceSelection.ParseDevice"/> reads "cpu", "cuda", "cuda:N".</summary>
    public Device Device { get; init; } = CPU;

    /// <summary>
    /// Weight/matmul precision: Float32, BFloat16 or Float16 (CUDA only: float16 matmuls on CPU are unusably slow).
    /// LayerNorms, softmax statistics, residuals and outputs stay float32, like torch.autocast in the reference.
    /// </summary>
    public ScalarType DType { get; init; } = ScalarType.Float32;

    /// <summary>Run bfloat16 on a CPU without bfloat16 matrix hardware anyway (emulated: hundreds of times slower).</summary>
    public bool AllowSlowDType { get; init; }

    /// <summary>
    /// Ignore checkpoint entries the model does not have. The published <c>slide_encoder.pth</c> has not been
    /// inspected for extra entries (e.g. an MAE decoder); missing model keys are always an error.
    /// </summary>
    public bool AllowUnexpectedKeys { get; init; }

    /// <summary>Block sizes of the attention kernel (memory/speed trade-off only; results do not depend on them beyond rounding).</summary>
    public AttentionBlocking Blocking { get; init; } = AttentionBlocking.Default;

    /// <summary>
    /// <see cref="SlideAttention.Dilated"/> (Prov-GigaPath) or <see cref="SlideAttention.DenseBaseline"/>, a benchmark
    /// baseline: the same layers with every tile attending to every tile through libtorch's fused attention. The
    /// baseline's outputs are not Prov-GigaPath's.
    /// </summary>
    public SlideAttention Attention { get; init; } = SlideAttention.Dilated;

    /// <summary>Called with each warning (e.g. duplicate grid cells) as it arises; warnings are also returned with the result.</summary>
    public Action<string>? OnWarning { get; init; }
}

/// <summary>The attention the slide encoder's layers use.</summary>
public enum SlideAttention
{
    /// <summary>LongNet dilated attention with the model's segment lengths and ratios: the published model.</summary>
    Dilated,

    /// <summary>Dense attention over the whole sequence (quadratic in N): a baseline for benchmarks only.</summary>
    DenseBaseline,
}
