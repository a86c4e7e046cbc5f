using GigaPath.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Models.Slide;

/// <summary>
/// One allocation for the tensors a checkpointed training forward keeps until its backward: every layer's output and
/// the attention results the layers keep. Made as separate tensors they interleave in the heap with the much larger
/// traffic of short-lived buffers (gathered blocks, scores, FFN chunks), and glibc's heap then fragments: measured at
/// 10k tiles, 1.3-2.9 GB of free-but-resident heap beside 2.5 GB in use, which alone broke the 4 GiB budget. Taken
/// from one block, the kept tensors leave the rest of the heap to the short-lived buffers, which reuse it layer after
/// layer; on CPU the block is not in the heap at all (<see cref="MappedTensors"/>). The tensors taken keep the block
/// alive: it is freed when the last of them is (after the backward).
/// </summary>
internal sealed class ActivationArena : IDisposable
{
    /// <summary>Slices start on 64-byte boundaries (16 float32), libtorch's own alignment, so kernels see the same layout.</summary>
    private const long Alignment = 16;

    private readonly Tensor _storage;
    private long _used;

    /// <param name="elements">Capacity in elements of <paramref name="dtype"/>.</param>
    /// <param name="dtype">The element type of every tensor taken.</param>
    /// <param name="device">Where the block lives.</param>
    public ActivationArena(long elements, ScalarType dtype, Device device)
    {
        elements = Math.Max(1, elements);
        // On CPU the block is a mapping of its own (MappedTensors): when the step's graph dies it goes straight back
        // to the system instead of leaving a hole in the heap that the next step's buffers cannot fill.
        _storage = MappedTensors.Empty([elements], dtype, device).DetachFromDisposeScope();
        DType = dtype;
    }

    /// <summary>Elements handed out so far, alignment included.</summary>
    public long Used => _used;

    /// <summary>The element type of the block.</summary>
    public ScalarType DType { get; }

    /// <summary>Elements a tensor of <paramref name="shape"/> occupies in the arena, alignment included.</summary>
    public static long Footprint(params long[] shape) => (shape.Aggregate(1L, (a, b) => a * b) + Alignment - 1) / Alignment * Alignment;

    /// <summary>
    /// An uninitialised tensor of <paramref name="shape"/> and <paramref name="dtype"/> in the current dispose scope:
    /// a view into the block while it has room and the dtype matches, a tensor of its own otherwise (an estimate that
    /// fell short costs memory, never correctness).
    /// </summary>
    public Tensor Take(long[] shape, ScalarType dtype)
    {
        long footprint = Footprint(shape);
        if (dtype != DType || _used + footprint > _storage.shape[0])
            return torch.empty(shape, dtype, _storage.device);
        using var slice = _storage.narrow(0, _used, shape.Aggregate(1L, (a, b) => a * b));
        using var view = slice.view(shape);
        _used += footprint;
        // Not a view for autograd: a tensor of its own (own version counter) on the block's memory. A view would share
        // the block's version counter, so filling the next layer's slice would count as modifying this one in place,
        // which autograd refuses for the output of a custom function.
        using var _ = torch.no_grad();
        return torch.empty(0, dtype, _storage.device).set_(view);
    }

    /// <summary>A copy of <paramref name="source"/> in the arena (see <see cref="Take"/>), in the current dispose scope.</summary>
    public Tensor Keep(Tensor source) => Take(source.shape, source.dtype).copy_(source);

    /// <summary>Releases this handle; the block itself lives until the last view taken from it is disposed.</summary>
    public void Dispose() => _storage.Dispose();
}
