using System.Reflection;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Models.Slide;

/// <summary>
/// TorchSharp 0.107's custom autograd functions keep, for every output, an <c>empty_like(output)</c> until the graph
/// node dies: a full-size buffer it only uses to make a zero gradient when the output gets none (PyTorch keeps the
/// shape alone). For a checkpointed encoder layer that is one more L·D tensor per layer for the whole forward and
/// backward - 340 MB at 10k tiles, 1.7 GB at 50k - which is a fifth of the fine-tuning budget.
/// <see cref="Release"/> frees those buffers right after <c>apply</c> and turns gradient materialisation off, so a
/// missing output gradient reaches the backward as an undefined tensor, which our backwards treat as zero.
/// It reaches TorchSharp's private fields by reflection; <see cref="Supported"/> says whether this TorchSharp has them
/// (a test fails when an upgrade renames them, instead of memory silently growing again).
/// </summary>
internal static class AutogradOutputCache
{
    private const BindingFlags Private = BindingFlags.Instance | BindingFlags.NonPublic;
    private static readonly FieldInfo? NodeField = typeof(autograd.AutogradContext).GetField("_node", Private);

    /// <summary>Whether this TorchSharp keeps the cache where <see cref="Release"/> looks for it.</summary>
    public static bool Supported => NodeField is not null && NodeField.FieldType.IsClass;

    /// <summary>
    /// Frees the output buffers the node behind <paramref name="ctx"/> keeps. Call it after the function's
    /// <c>apply</c> has returned (the buffers are made after <c>forward</c>). Returns the bytes freed.
    /// </summary>
    public static long Release(autograd.AutogradContext ctx)
    {
        if (NodeField?.GetValue(ctx) is not { } node) return 0;
        if (node.GetType().GetField("_outputCache", Private)?.GetValue(node) is not List<Tensor?> cache) return 0;
        ctx.set_materialize_grads(false);
        long bytes = 0;
        for (int i = 0; i < cache.Count; i++)
        {
            if (cache[i] is not { } t) continue;
            bytes += t.NumberOfElements * t.ElementSize;
            t.Dispose();
            cache[i] = null;
        }
        return bytes;
    }
}
