using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Visualization;

/// <summary>
/// A fitted principal component analysis: the data mean, the leading unit-length components (rows, [K, D]) with
/// their variances, and the projections of the fitted rows ([N, K] row-major).
/// </summary>
internal sealed record PcaResult(double[] Mean, double[][] Components, double[] Variance, float[] Projected, int Count)
{
    public int K => Components.Length;

    /// <summary>Column <paramref name="k"/> of the projections.</summary>
    public float[] Component(int k) => Enumerable.Range(0, Count).Select(i => Projected[i * K + k]).ToArray();
}

/// <summary>
/// PCA computed in the engine with TorchSharp in float64: an eigen-decomposition (<c>torch.linalg.eigh</c>) of the
/// D×D covariance, or of the N×N Gram matrix when there are fewer rows than features. Each component's sign is fixed
/// so that its largest-magnitude entry is positive (scikit-learn ≥ 1.5's convention), so results are reproducible.
/// </summary>
internal static class Pca
{
    public static PcaResult Fit(float[] data, int rows, int dim, int components = 3)
    {
        if (rows < 2) throw new GigaPathException($"PCA needs at least 2 rows, got {rows}");
        if ((long)rows * dim != data.LongLength) throw new ArgumentException($"{data.LongLength} values do not form [{rows}, {dim}]", nameof(data));
        int k = Math.Min(components, Math.Min(rows, dim));
        using var scope = NewDisposeScope();
        var x = tensor(data, [rows, dim]).to_type(ScalarType.Float64);
        var mean = x.mean([0L]);
        var centred = x - mean;
        Tensor vectors, values;
        if (rows >= dim)
        {
            (values, vectors) = linalg.eigh(centred.t().matmul(centred) / (rows - 1));
            vectors = vectors.flip(1).narrow(1, 0, k).t();
        }
        else
        {
            // Same nonzero spectrum from the smaller Gram matrix: v = Xᵀu / ‖Xᵀu‖.
            (values, var u) = linalg.eigh(centred.matmul(centred.t()) / (rows - 1));
            vectors = centred.t().matmul(u.flip(1).narrow(1, 0, k));
            vectors = (vectors / vectors.norm(0, keepdim: true).clamp_min(1e-300)).t();
        }
        values = values.flip(0).narrow(0, 0, k).clamp_min(0);
        var largest = vectors.abs().argmax(1, keepdim: true);
        var sign = vectors.gather(1, largest).sign();
        vectors = vectors * where(sign.eq(0), ones_like(sign), sign);
        var projected = centred.matmul(vectors.t()).to_type(ScalarType.Float32).contiguous();

        var comps = Enumerable.Range(0, k).Select(i => vectors[i].contiguous().data<double>().ToArray()).ToArray();
        return new PcaResult(mean.data<double>().ToArray(), comps, values.contiguous().data<double>().ToArray(),
            projected.data<float>().ToArray(), rows);
    }

    /// <summary>Min-max scaling of each column of [N, K] values to [0, 1] (a constant column maps to 0).</summary>
    public static float[] MinMaxColumns(float[] values, int rows, int columns)
    {
        var result = new float[values.Length];
        for (int c = 0; c < columns; c++)
        {
            float min = float.PositiveInfinity, max = float.NegativeInfinity;
            for (int i = 0; i < rows; i++)
            {
                var v = values[i * columns + c];
                if (v < min) min = v;
                if (v > max) max = v;
            }
            float range = max - min;
            for (int i = 0; i < rows; i++)
                result[i * columns + c] = range > 0 ? (values[i * columns + c] - min) / range : 0f;
        }
        return result;
    }
}
