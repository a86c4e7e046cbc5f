using static TorchSharp.torch;

namespace GigaPath.Weights;

/// <summary>
/// Moves a tensor's bytes in pieces: .NET spans are int-indexed, so one span cannot cover a tensor of 2 GiB or more
/// (real checkpoints hold such tensors, e.g. a large vocabulary embedding). Each piece is a contiguous view of the
/// tensor, so nothing is copied on the way.
/// </summary>
internal static class TensorChunks
{
    public const long DefaultChunkBytes = 1L << 30;

    /// <summary>Bytes per piece; tests lower it to run the multi-piece path on small tensors.</summary>
    internal static long ChunkBytes { get; set; } = DefaultChunkBytes;

    public delegate void ChunkAction(Span<byte> chunk, long byteOffset);

    /// <summary>Calls <paramref name="action"/> on consecutive pieces of <paramref name="tensor"/>'s bytes (it must be contiguous and on the CPU).</summary>
    public static void ForEach(Tensor tensor, ChunkAction action)
    {
        if (!tensor.is_contiguous()) throw new ArgumentException("the tensor must be contiguous", nameof(tensor));
        long total = tensor.numel();
        if (total == 0) return;
        long elementSize = tensor.ElementSize;
        long perChunk = Math.Max(1, Math.Min(ChunkBytes, int.MaxValue) / elementSize);
        using var flat = tensor.view(-1);
        for (long start = 0; start < total; start += perChunk)
        {
            using var part = flat.narrow(0, start, Math.Min(perChunk, total - start));
            action(part.bytes, start * elementSize);
        }
    }

    /// <summary>The byte length of <paramref name="tensor"/>.</summary>
    public static long ByteLength(Tensor tensor) => tensor.numel() * tensor.ElementSize;
}
