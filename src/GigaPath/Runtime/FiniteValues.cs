using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Runtime;

/// <summary>
/// Finds NaN and infinity in a tensor by rows (its first dimension), so that inputs and model outputs can be checked
/// at their boundaries and the first bad tile or slide named.
/// </summary>
internal static class FiniteValues
{
    /// <summary>How many rows of <paramref name="t"/> hold a NaN or infinity and the first of them; null when none.</summary>
    public static (long Count, long First)? NonFiniteRows(Tensor t)
    {
        if (t.numel() == 0 || !t.is_floating_point()) return null;
        using var scope = torch.NewDisposeScope();
        var bad = torch.isfinite(t).logical_not().reshape(t.shape[0], -1).any(1);
        if (!bad.any().item<bool>()) return null;
        return (bad.sum().item<long>(), bad.nonzero()[0, 0].item<long>());
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
