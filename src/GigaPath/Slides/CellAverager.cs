using GigaPath.Imaging;

namespace GigaPath.Slides;

/// <summary>
/// Reduces a large image, fed in strips, to a grid of cells, each the mean colour of the source pixels mapped to
/// it. The mapping is given per source column and per source row, so cells need not be whole numbers of pixels.
/// </summary>
internal sealed class CellAverager
{
    private readonly int[] _cellOfColumn;
    private readonly int[] _cellOfRow;
    private readonly int _cellsX, _cellsY;
    private readonly long[] _sums;
    private readonly long[] _counts;

    public CellAverager(int[] cellOfColumn, int[] cellOfRow, int cellsX, int cellsY)
    {
        _cellOfColumn = cellOfColumn;
        _cellOfRow = cellOfRow;
        _cellsX = cellsX;
        _cellsY = cellsY;
        _sums = new long[(long)cellsX * cellsY * 3];
        _counts = new long[(long)cellsX * cellsY];
    }

    /// <summary>The cell of each of <paramref name="sourceSize"/> pixels along one axis, by the position of the
    /// pixel's centre, cells being <paramref name="pixelsPerCell"/> source pixels wide (clamped to the last cell).</summary>
    public static int[] CellMap(int sourceSize, double pixelsPerCell, int cells)
    {
        var map = new int[sourceSize];
        for (int i = 0; i < sourceSize; i++)
            map[i] = (int)Math.Min(cells - 1, (i + 0.5) / pixelsPerCell);
        return map;
    }

    public void Add(RgbImage strip, int firstRow)
    {
        var px = strip.Pixels;
        for (int r = 0; r < strip.Height; r++)
        {
            int cy = _cellOfRow[firstRow + r];
            if (cy < 0 || cy >= _cellsY) continue;
            long rowBase = (long)cy * _cellsX;
            int o = r * strip.Stride;
            for (int x = 0; x < strip.Width; x++, o += 3)
            {
                int cx = _cellOfColumn[x];
                if (cx < 0 || cx >= _cellsX) continue;
                long cell = rowBase + cx;
                _counts[cell]++;
                _sums[cell * 3] += px[o];
                _sums[cell * 3 + 1] += px[o + 1];
                _sums[cell * 3 + 2] += px[o + 2];
            }
        }
    }

    /// <summary>The cell means, rounded; a cell no pixel fell in is white (background).</summary>
    public RgbImage Result()
    {
        var rgb = new byte[(long)_cellsX * _cellsY * 3];
        for (long c = 0; c < _counts.LongLength; c++)
        {
            long n = _counts[c];
            for (int k = 0; k < 3; k++)
                rgb[c * 3 + k] = n == 0 ? (byte)255 : (byte)((_sums[c * 3 + k] + n / 2) / n);
        }
        return new RgbImage(_cellsX, _cellsY, rgb);
    }
}
