using GigaPath.Imaging;
using GigaPath.Weights;
using SkiaSharp;

namespace GigaPath.Slides;

/// <summary>
/// A picture of a tiling plan for a person to check: the slide's thumbnail, mask cells tinted green in proportion to
/// their tissue fraction, and every kept tile outlined in blue.
/// </summary>
public static class TilingThumbnail
{
    private static readonly SKColor Tint = new(0, 200, 60);
    private static readonly SKColor Outline = new(20, 60, 230);

    /// <summary>Renders the picture of <paramref name="plan"/>.</summary>
    /// <param name="slide">The slide <paramref name="plan"/> was made for.</param>
    /// <param name="plan">The slide's plan.</param>
    /// <param name="maxSide">Longest side of the picture in pixels.</param>
    public static RgbImage Render(ISlide slide, TilingPlan plan, int maxSide = 1024)
    {
        ArgumentNullException.ThrowIfNull(slide);
        ArgumentNullException.ThrowIfNull(plan);
        var thumb = slide.GetThumbnail(maxSide);
        var (w0, h0) = slide.LevelDimensions(0);
        float sx = (float)(thumb.Width / (double)w0), sy = (float)(thumb.Height / (double)h0);

        using var bitmap = new SKBitmap(new SKImageInfo(thumb.Width, thumb.Height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        CopyIn(thumb, bitmap);
        using (var canvas = new SKCanvas(bitmap))
        {
            if (plan.Mask is { } mask)
            {
                using var fill = new SKPaint { Style = SKPaintStyle.Fill, IsAntialias = false };
                float cw = (float)mask.CellSizeLevel0 * sx, ch = (float)mask.CellSizeLevel0 * sy;
                for (int cy = 0; cy < mask.CellsY; cy++)
                    for (int cx = 0; cx < mask.CellsX; cx++)
                    {
                        float f = mask.CellFraction(cx, cy);
                        if (f <= 0) continue;
                        fill.Color = Tint.WithAlpha((byte)Math.Round(70 * f));
                        canvas.DrawRect(cx * cw, cy * ch, cw, ch, fill);
                    }
            }
            using var stroke = new SKPaint { Style = SKPaintStyle.Stroke, Color = Outline, StrokeWidth = 1, IsAntialias = true };
            float tw = (float)plan.Level0Step * sx, th = (float)plan.Level0Step * sy;
            foreach (var t in plan.Tiles)
                canvas.DrawRect(t.Level0X * sx + 0.5f, t.Level0Y * sy + 0.5f, tw - 1, th - 1, stroke);
        }
        return CopyOut(bitmap);
    }

    /// <summary>Renders the picture and writes it as a PNG, atomically (a reader never sees a partial file).</summary>
    /// <param name="path">The PNG file to write.</param>
    /// <param name="slide">The slide <paramref name="plan"/> was made for.</param>
    /// <param name="plan">The slide's plan.</param>
    /// <param name="maxSide">Longest side of the picture in pixels.</param>
    public static void Write(string path, ISlide slide, TilingPlan plan, int maxSide = 1024) =>
        Render(slide, plan, maxSide).SavePng(path);

    private static void CopyIn(RgbImage src, SKBitmap dst)
    {
        var px = dst.GetPixelSpan();
        for (int i = 0, o = 0; i < src.Pixels.Length; i += 3, o += 4)
        {
            px[o] = src.Pixels[i];
            px[o + 1] = src.Pixels[i + 1];
            px[o + 2] = src.Pixels[i + 2];
            px[o + 3] = 255;
        }
    }

    private static RgbImage CopyOut(SKBitmap src)
    {
        var px = src.GetPixelSpan();
        var rgb = new byte[src.Width * src.Height * 3];
        for (int i = 0, o = 0; o < rgb.Length; i += 4, o += 3)
        {
            rgb[o] = px[i];
            rgb[o + 1] = px[i + 1];
            rgb[o + 2] = px[i + 2];
        }
        return new RgbImage(src.Width, src.Height, rgb);
    }
}
