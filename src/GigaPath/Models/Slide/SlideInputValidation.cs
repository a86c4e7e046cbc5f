using GigaPath.Runtime;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Models.Slide;

/// <summary>Shape, count and value checks on a slide's inputs, each failure naming the tensor and the problem.</summary>
internal static class SlideInputValidation
{
    /// <summary>Returns the embeddings as [N, in_chans] and the coords as [N, 2] (views when already so shaped).</summary>
    public static (Tensor Embeddings, Tensor Coords) Check(Tensor tileEmbeddings, Tensor coords, SlideEncoderConfig config)
    {
        var embeddings = DropBatch(tileEmbeddings, "tile embeddings", $"[N, {config.InputChannels}] or [1, N, {config.InputChannels}]");
        var xy = DropBatch(coords, "coords", "[N, 2] or [1, N, 2]");
        if (xy.shape[1] != 2)
            throw new GigaPathException($"coords: expected [N, 2] or [1, N, 2] (x, y per tile), got {Shape(coords)}");
        long n = embeddings.shape[0];
        if (n != xy.shape[0])
            throw new GigaPathException($"tile embeddings hold {n} tiles but coords hold {xy.shape[0]}; they must match one to one");
        if (n == 0)
            throw new GigaPathException("empty slide: 0 tiles (nothing to encode)");
        if (embeddings.shape[1] != config.InputChannels)
            throw new GigaPathException($"tile embeddings: width {embeddings.shape[1]} does not match the model's in_chans {config.InputChannels}");
        if (!torch.is_floating_point(embeddings))
            throw new GigaPathException($"tile embeddings: dtype {embeddings.dtype} is not a floating-point type");
        CheckFinite(embeddings);
        return (embeddings, xy);
    }

    private static Tensor DropBatch(Tensor t, string name, string expected)
    {
        if (t.ndim == 2) return t;
        if (t.ndim == 3 && t.shape[0] == 1) return t[0];
        throw new GigaPathException($"{name}: expected {expected}, got {Shape(t)} (one slide at a time)");
    }

    /// <summary>Throws naming the first tile with NaN or infinity (found in row chunks by <see cref="FiniteValues"/>).</summary>
    private static void CheckFinite(Tensor embeddings)
    {
        if (FiniteValues.NonFiniteRows(embeddings) is not { } bad) return;
        var (count, first) = bad;
        using var scope = torch.NewDisposeScope();
        var row = embeddings[first].to(ScalarType.Float64, CPU);
        long column = torch.isfinite(row).logical_not().nonzero()[0, 0].item<long>();
        throw new GigaPathException(
            $"tile embeddings: tile {first} holds {row[column].item<double>()} at feature {column} ({count} tile(s) contain NaN or infinity)");
    }

    private static string Shape(Tensor t) => "[" + string.Join(", ", t.shape) + "]";
}
