namespace GigaPath.Models.Slide;

/// <summary>
/// <see cref="EncoderOptions"/> plus the slide encoder's attention settings. Device and dtype: the weights and matrix
/// products use <see cref="EncoderOptions.DType"/>; LayerNorms, softmax statistics, residuals and outputs stay
/// float32, like torch.autocast in the reference.
/// </summary>
public sealed record SlideEncoderOptions : EncoderOptions
{
    /// <summary>These settings with <paramref name="options"/>' device, dtype and key strictness (defaults for the rest).</summary>
    internal static SlideEncoderOptions From(EncoderOptions? options) => options switch
    {
        null => new SlideEncoderOptions(),
        SlideEncoderOptions slide => slide,
        _ => new SlideEncoderOptions
        {
            Device = options.Device, DType = options.DType, AllowSlowDType = options.AllowSlowDType,
            AllowUnexpectedKeys = options.AllowUnexpectedKeys,
        },
    };

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
