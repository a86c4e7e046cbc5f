using System.Numerics;

namespace GigaPath.Imaging;

/// <summary>
/// Pillow's 8-bit separable convolution resampler (<c>Image.resize(size, BICUBIC | BILINEAR)</c>), reproduced bit for bit so
/// that tiles of any size reach the model with exactly the pixels the Python reference gives it
/// (docs/tile-encoder.md §2). SkiaSharp's cubic filters are different filters and cannot be used for this.
/// </summary>
internal static class PillowResample
{
    // Pillow: PRECISION_BITS = 32 - 8 - 2, so that 255 * (sum of |weights|) stays inside an int.
    private const int PrecisionBits = 22;
    private const int Half = 1 << (PrecisionBits - 1);

    /// <summary>Resizes with Pillow's bicubic filter (see <see cref="Resize"/>).</summary>
    public static RgbImage ResizeBicubic(RgbImage src, int width, int height) => Resize(src, width, height, ResizeInterpolation.Bicubic);

    /// <summary>
    /// Resizes with Pillow's bicubic (Keys, a = -0.5) or bilinear (triangle) filter, antialiased when shrinking. The
    /// horizontal pass runs first and only when the width changes; its result is rounded to uint8 before the vertical
    /// pass, as in Pillow.
    /// </summary>
    public static RgbImage Resize(RgbImage src, int width, int height, ResizeInterpolation filter)
    {
        ArgumentNullException.ThrowIfNull(src);
        if (width <= 0 || height <= 0)
            throw new ArgumentOutOfRangeException(nameof(width), $"target size must be positive, got {width}x{height}");
        // The passes index their buffers with int: refuse sizes whose buffers could not be indexed that way (callers
        // with untrusted sizes check a budget first, see TilePreprocessor.MaxAspectRatio).
        long largest = 3L * Math.Max(width, src.Width) * Math.Max(height, src.Height);
        if (largest > Array.MaxLength)
            throw new ImageTooLargeException($"resizing a {src.Width}x{src.Height} image to {width}x{height} needs {largest:N0} bytes per pass, beyond what one image can hold", width, height);

        bool needHorizontal = width != src.Width;
        bool needVertical = height != src.Height;
        if (!needHorizontal && !needVertical)
            return new RgbImage(src.Width, src.Height, (byte[])src.Pixels.Clone());

        var horizontal = ResampleCoefficients.For(filter, src.Width, width);
        var vertical = ResampleCoefficients.For(filter, src.Height, height);

        var image = src;
        int firstRow = 0;
        if (needHorizontal)
        {
            // Only the source rows the vertical pass reads are resampled horizontally (Pillow does the same).
            firstRow = needVertical ? vertical.First : 0;
            int lastRow = needVertical ? vertical.Last : src.Height;
            image = ResampleRows(src, firstRow, lastRow - firstRow, horizontal);
        }
        if (needVertical)
            image = ResampleColumns(image, firstRow, vertical);
        return image;
    }

    private static unsafe RgbImage ResampleRows(RgbImage src, int firstRow, int rows, ResampleCoefficients c)
    {
        int outWidth = c.OutSize, kernelSize = c.KernelSize;
        var dst = new byte[rows * outWidth * 3];
        int srcStride = src.Stride;
        fixed (byte* srcPixels = src.Pixels)
        fixed (byte* dstPixels = dst)
        fixed (int* weights = c.Weights)
        fixed (int* starts = c.Start)
        fixed (int* counts = c.Count)
        {
            for (int y = 0; y < rows; y++)
            {
                byte* srcRow = srcPixels + (long)(firstRow + y) * srcStride;
                byte* d = dstPixels + (long)y * outWidth * 3;
                for (int x = 0; x < outWidth; x++, d += 3)
                {
                    int r = Half, g = Half, b = Half, count = counts[x];
                    byte* p = srcRow + starts[x] * 3;
                    int* w = weights + x * kernelSize;
                    for (int k = 0; k < count; k++, p += 3)
                    {
                        int wk = w[k];
                        r += p[0] * wk;
                        g += p[1] * wk;
                        b += p[2] * wk;
                    }
                    d[0] = Clip8(r);
                    d[1] = Clip8(g);
                    d[2] = Clip8(b);
                }
            }
        }
        return new RgbImage(outWidth, rows, dst);
    }

    /// <param name="src">The horizontally resampled image.</param>
    /// <param name="rowOffset">Source row index of <paramref name="src"/>'s first row (non-zero after a cropped horizontal pass).</param>
    /// <param name="c">Vertical filter coefficients.</param>
    private static RgbImage ResampleColumns(RgbImage src, int rowOffset, ResampleCoefficients c)
    {
        int stride = src.Stride;
        int outHeight = c.OutSize;
        var dst = new byte[outHeight * stride];
        var srcPixels = src.Pixels;
        var weights = c.Weights;
        // Accumulating whole rows (rather than one output value at a time) keeps memory access sequential and
        // vectorises; integer addition is exact, so the order does not change the result.
        var acc = new int[stride];
        for (int y = 0; y < outHeight; y++)
        {
            Array.Fill(acc, Half);
            int start = c.Start[y] - rowOffset, count = c.Count[y], w0 = y * c.KernelSize;
            for (int k = 0; k < count; k++)
                MultiplyAdd(acc, srcPixels.AsSpan((start + k) * stride, stride), weights[w0 + k]);
            ClipRow(acc, dst.AsSpan(y * stride, stride));
        }
        return new RgbImage(src.Width, outHeight, dst);
    }

    private static void MultiplyAdd(Span<int> acc, ReadOnlySpan<byte> row, int weight)
    {
        int i = 0;
        if (Vector.IsHardwareAccelerated)
        {
            var w = new Vector<int>(weight);
            int lanes = Vector<int>.Count;
            for (; i <= row.Length - Vector<byte>.Count; i += Vector<byte>.Count)
            {
                Vector.Widen(new Vector<byte>(row[i..]), out Vector<ushort> lo, out Vector<ushort> hi);
                Vector.Widen(lo, out Vector<uint> v0, out Vector<uint> v1);
                Vector.Widen(hi, out Vector<uint> v2, out Vector<uint> v3);
                var a = acc[i..];
                (new Vector<int>(a) + Vector.AsVectorInt32(v0) * w).CopyTo(a);
                (new Vector<int>(a[lanes..]) + Vector.AsVectorInt32(v1) * w).CopyTo(a[lanes..]);
                (new Vector<int>(a[(2 * lanes)..]) + Vector.AsVectorInt32(v2) * w).CopyTo(a[(2 * lanes)..]);
                (new Vector<int>(a[(3 * lanes)..]) + Vector.AsVectorInt32(v3) * w).CopyTo(a[(3 * lanes)..]);
            }
        }
        for (; i < row.Length; i++)
            acc[i] += row[i] * weight;
    }

    private static void ClipRow(ReadOnlySpan<int> acc, Span<byte> outRow)
    {
        for (int i = 0; i < outRow.Length; i++)
            outRow[i] = Clip8(acc[i]);
    }

    private static byte Clip8(int value)
    {
        // Arithmetic shift floors, like Pillow's clip8 table lookup on (value >> PRECISION_BITS).
        int v = value >> PrecisionBits;
        return v < 0 ? (byte)0 : v > 255 ? (byte)255 : (byte)v;
    }
}

/// <summary>Per-output-index taps and fixed-point weights for one axis (Pillow's <c>precompute_coeffs</c>).</summary>
internal sealed class ResampleCoefficients
{
    public int OutSize { get; }
    public int KernelSize { get; }
    public int[] Start { get; }
    public int[] Count { get; }

    /// <summary>OutSize × KernelSize weights with 22 fractional bits; entries past Count[o] are zero.</summary>
    public int[] Weights { get; }

    /// <summary>First source index any output reads.</summary>
    public int First => Start[0];

    /// <summary>One past the last source index the last output reads.</summary>
    public int Last => Start[OutSize - 1] + Count[OutSize - 1];

    private ResampleCoefficients(int outSize, int kernelSize)
    {
        OutSize = outSize;
        KernelSize = kernelSize;
        Start = new int[outSize];
        Count = new int[outSize];
        Weights = new int[outSize * kernelSize];
    }

    /// <summary>The coefficients of Pillow's <paramref name="filter"/> from <paramref name="inSize"/> to <paramref name="outSize"/> samples.</summary>
    public static ResampleCoefficients For(ResizeInterpolation filter, int inSize, int outSize) => filter switch
    {
        ResizeInterpolation.Bicubic => Compute(inSize, outSize, 2.0, Keys),
        ResizeInterpolation.Bilinear => Compute(inSize, outSize, 1.0, Triangle),
        _ => throw new ArgumentOutOfRangeException(nameof(filter), filter, "unknown resize filter"),
    };


    private static ResampleCoefficients Compute(int inSize, int outSize, double filterSupport, Func<double, double> kernel)
    {
        double scale = (double)inSize / outSize;
        double filterScale = Math.Max(scale, 1.0);
        double support = filterSupport * filterScale;
        int kernelSize = (int)Math.Ceiling(support) * 2 + 1;
        // Pillow multiplies by the reciprocal rather than dividing by filterScale; the two can differ in the last bit.
        double inverseFilterScale = 1.0 / filterScale;

        var c = new ResampleCoefficients(outSize, kernelSize);
        Span<double> raw = stackalloc double[kernelSize];
        for (int o = 0; o < outSize; o++)
        {
            double center = (o + 0.5) * scale;
            int lo = Math.Max((int)(center - support + 0.5), 0);
            int hi = Math.Min((int)(center + support + 0.5), inSize);
            int count = hi - lo;
            double sum = 0.0;
            for (int k = 0; k < count; k++)
            {
                double w = kernel((k + lo - center + 0.5) * inverseFilterScale);
                raw[k] = w;
                sum += w;
            }
            int w0 = o * kernelSize;
            for (int k = 0; k < count; k++)
            {
                double w = sum != 0.0 ? raw[k] / sum : raw[k];
                c.Weights[w0 + k] = w < 0
                    ? (int)(-0.5 + w * (1 << 22))
                    : (int)(0.5 + w * (1 << 22));
            }
            c.Start[o] = lo;
            c.Count[o] = count;
        }
        return c;
    }

    /// <summary>Pillow's bilinear (triangle) kernel.</summary>
    private static double Triangle(double x)
    {
        if (x < 0.0) x = -x;
        return x < 1.0 ? 1.0 - x : 0.0;
    }

    /// <summary>Keys' cubic convolution kernel with a = -0.5, in Pillow's Horner form (the form matters for bit parity).</summary>
    private static double Keys(double x)
    {
        const double a = -0.5;
        if (x < 0.0) x = -x;
        if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
        if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
        return 0.0;
    }
}
