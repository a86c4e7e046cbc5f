using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Runtime;

/// <summary>
/// Finds NaN and infinity in a tensor by rows (its first dimension), so that inputs and model outputs can be checked
/// at their boundaries and the first bad tile or slide named.
/// </summary>
internal static class FiniteValues
{
    /// <summary>Elements checked at a time: isfinite makes an |x| copy and three boolean masks of what it is given.</summary>
    private const long ElementsPerChunk = 1L << 22;

    /// <summary>
    /// How many rows of <paramref name="t"/> hold a NaN or infinity and the first of them; null when none. Checked a
    /// few million elements at a time, so checking a whole slide (1.2 GB of masks at 100k tiles × 1536) costs no more
    /// memory than checking a tile.
    /// </summary>
    public static (long Count, long First)? NonFiniteRows(Tensor t)
    {
        if (t.numel() == 0 || !t.is_floating_point()) return null;
        long n = t.shape[0], rowsPerChunk = Math.Max(1, ElementsPerChunk / Math.Max(1, t.numel() / n)), count = 0, first = -1;
        for (long r0 = 0; r0 < n; r0 += rowsPerChunk)
        {
            using var scope = torch.NewDisposeScope();
            long rows = Math.Min(rowsPerChunk, n - r0);
            var bad = torch.isfinite(t.narrow(0, r0, rows)).logical_not().reshape(rows, -1).any(1);
            if (!bad.any().item<bool>()) continue;
            count += bad.sum().item<long>();
            if (first < 0) first = r0 + bad.nonzero()[0, 0].item<long>();
        }
        return first < 0 ? null : (count, first);
    }
}

/// <summary>
/// A model turned finite input into NaN or infinity: its weights hold non-finite values, or a reduced precision
/// overflowed. <see cref="Row"/> is the first bad row of the batch, so that a caller that knows the inputs' names can
/// say which tile or image it was (<see cref="Naming"/>).
/// </summary>
internal sealed class NonFiniteOutputException(string subject, string detail, long row) : GigaPathException($"{subject}: {detail}")
{
    public long Row { get; } = row;

    public string Detail { get; } = detail;

    /// <summary>The same error with the bad row called <paramref name="subject"/> (e.g. the image file).</summary>
    public NonFiniteOutputException Naming(string subject) => new(subject, Detail, Row);
}
