using GigaPath.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Models.Slide;

/// <summary>
/// The whole-slide buffers of an inference forward, made once per slide and reused by every layer: q, k and v
/// [B, L, H, d] in the projections' dtype and the attention's <see cref="DilatedAttentionKernel.Combination"/>. With the
/// hidden state h [B, L, D] (<see cref="LongNetViT.Embed"/>), these are the only tensors whose size grows with the
/// slide; everything else a layer makes is a row chunk or an attention block of bounded size. On CPU each buffer is a
/// mapping of its own (<see cref="MappedTensors"/>): it never enters malloc's heap, so the heap holds only the bounded
/// short-lived buffers, which it recycles layer after layer, and the slide's memory is the same on every run. This is
/// the budget docs/slide-encoder.md writes down per tile.
/// </summary>
internal sealed class SlideWorkspace : IDisposable
{
    private SlideWorkspace(Tensor q, Tensor k, Tensor v, DilatedAttentionKernel.Combination combination) =>
        (Q, K, V, Combination) = (q, k, v, combination);

    /// <summary>Queries [B, L, H, d].</summary>
    public Tensor Q { get; }

    /// <summary>Keys [B, L, H, d].</summary>
    public Tensor K { get; }

    /// <summary>Values [B, L, H, d].</summary>
    public Tensor V { get; }

    /// <summary>The attention's branch-combination buffers.</summary>
    public DilatedAttentionKernel.Combination Combination { get; }

    /// <summary>Buffers for <paramref name="length"/> tokens (cls included) of <paramref name="config"/>'s model, q/k/v in <paramref name="projectionDType"/>.</summary>
    public static SlideWorkspace Allocate(SlideEncoderConfig config, long batch, long length, ScalarType projectionDType, Device device)
    {
        long heads = config.HeadCount, headDim = config.HeadDim;
        return new SlideWorkspace(
            Buffer([batch, length, heads, headDim], projectionDType, device),
            Buffer([batch, length, heads, headDim], projectionDType, device),
            Buffer([batch, length, heads, headDim], projectionDType, device),
            DilatedAttentionKernel.Combination.Allocate(batch, length, heads, headDim, config.SegmentLengths, config.DilationRatios,
                projectionDType, device));
    }

    /// <summary>A whole-slide buffer (<see cref="MappedTensors.Empty"/>) owned by the caller, in no dispose scope.</summary>
    internal static Tensor Buffer(long[] shape, ScalarType dtype, Device device) =>
        MappedTensors.Empty(shape, dtype, device).DetachFromDisposeScope();

    public void Dispose()
    {
        Q.Dispose();
        K.Dispose();
        V.Dispose();
        Combination.Dispose();
    }
}
