using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Models.Slide;

/// <summary>Grid cell of every tile: gx = floor(x / tile_size), gy = floor(y / tile_size), plus any warnings.</summary>
internal sealed record GridCells(long[] Gx, long[] Gy, IReadOnlyList<string> Warnings)
{
    public int Count => Gx.Length;

    /// <summary>The reference's pos_embed row index, gx · ngrids + gy + 1 (row 0 is the cls token's zero row).</summary>
    public long[] PositionIndices(int positionGridSize) => Gx.Select((x, i) => x * positionGridSize + Gy[i] + 1).ToArray();
}

/// <summary>
/// The slide encoder's 2-D sin-cos positions, computed only for the cells a slide uses instead of the reference's
/// 1,000,001-row table (3 GB for D = 768). Row for cell (gx, gy) with Q = D/4 and w_i = 1 / 10000^(i/Q):
/// [sin(gy·w), cos(gy·w), sin(gx·w), cos(gx·w)] - the y code comes first, as in the reference's table.
/// </summary>
internal static class SlidePositions
{
    /// <summary>
    /// Validates coordinates (finite, non-negative, inside the grid) and maps them to grid cells. Float32 and integer
    /// coordinates are divided in float32 and float64 ones in float64, like the reference's <c>coords / tile_size</c>.
    /// </summary>
    public static GridCells ToGridCells(Tensor coords, int tileSize, int positionGridSize, string source = "coords")
    {
        if (coords.ndim != 2 || coords.shape[1] != 2)
            throw new GigaPathException($"{source}: expected shape [N, 2], got [{string.Join(", ", coords.shape)}]");
        int n = checked((int)coords.shape[0]);
        var gx = new long[n];
        var gy = new long[n];
        using var scope = torch.NewDisposeScope();
        var cpu = coords.detach().cpu();
        if (cpu.dtype == ScalarType.Float64)
        {
            var data = cpu.contiguous().data<double>().ToArray();
            for (int i = 0; i < n; i++)
            {
                gx[i] = Cell(source, i, "x", data[2 * i], Math.Floor(data[2 * i] / tileSize), tileSize, positionGridSize);
                gy[i] = Cell(source, i, "y", data[2 * i + 1], Math.Floor(data[2 * i + 1] / tileSize), tileSize, positionGridSize);
            }
        }
        else
        {
            if (cpu.dtype is not (ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int64
                or ScalarType.Int32 or ScalarType.Int16 or ScalarType.Int8 or ScalarType.Byte))
                throw new GigaPathException($"{source}: dtype {cpu.dtype} is not a coordinate type (use a float or integer tensor)");
            var data = cpu.to_type(ScalarType.Float32).contiguous().data<float>().ToArray();
            float t = tileSize;
            for (int i = 0; i < n; i++)
            {
                gx[i] = Cell(source, i, "x", data[2 * i], MathF.Floor(data[2 * i] / t), tileSize, positionGridSize);
                gy[i] = Cell(source, i, "y", data[2 * i + 1], MathF.Floor(data[2 * i + 1] / t), tileSize, positionGridSize);
            }
        }
        return new GridCells(gx, gy, DuplicateWarnings(gx, gy, positionGridSize, source));
    }

    private static long Cell(string source, int tile, string axis, double value, double cell, int tileSize, int positionGridSize)
    {
        if (!double.IsFinite(value))
            throw new GigaPathException($"{source}: tile {tile} has {axis} = {value}; coordinates must be finite");
        if (value < 0)
            throw new GigaPathException($"{source}: tile {tile} has {axis} = {value}; coordinates must be non-negative level-0 pixels");
        if (cell >= positionGridSize)
            throw new GigaPathException(
                $"{source}: tile {tile} has {axis} = {value}, grid cell {cell} is outside the {positionGridSize}×{positionGridSize} position grid " +
                $"(coordinates must be below {(long)positionGridSize * tileSize} px)");
        return (long)cell;
    }

    private static List<string> DuplicateWarnings(long[] gx, long[] gy, int positionGridSize, string source)
    {
        var first = new Dictionary<long, int>();
        int duplicates = 0;
        string? example = null;
        for (int i = 0; i < gx.Length; i++)
        {
            long key = gx[i] * positionGridSize + gy[i];
            if (first.TryAdd(key, i)) continue;
            duplicates++;
            example ??= $"tile {i} and tile {first[key]} at grid cell ({gx[i]}, {gy[i]})";
        }
        return duplicates == 0
            ? []
            : [$"{source}: {duplicates} tile(s) share a grid cell with an earlier tile (first: {example}); they get identical positions and are all encoded, as in the reference"];
    }

    /// <summary>Sin-cos rows [N, D] (float32, CPU) for the given cells, computed in float64 and rounded once.</summary>
    public static Tensor SinCosRows(ReadOnlySpan<long> gx, ReadOnlySpan<long> gy, int embedDim)
    {
        if (embedDim % 4 != 0)
            throw new ArgumentException($"embed_dim {embedDim} must be a multiple of 4", nameof(embedDim));
        int q = embedDim / 4;
        var omega = new double[q];
        for (int i = 0; i < q; i++)
            omega[i] = 1.0 / Math.Pow(10000.0, i / (double)q);
        using var scope = torch.NewDisposeScope();
        var w = torch.tensor(omega, ScalarType.Float64).unsqueeze(0);
        var y = torch.tensor(gy.ToArray(), ScalarType.Int64).to_type(ScalarType.Float64).unsqueeze(1) * w;
        var x = torch.tensor(gx.ToArray(), ScalarType.Int64).to_type(ScalarType.Float64).unsqueeze(1) * w;
        var rows = torch.cat([y.sin(), y.cos(), x.sin(), x.cos()], 1).to_type(ScalarType.Float32);
        return rows.MoveToOuterDisposeScope();
    }
}
