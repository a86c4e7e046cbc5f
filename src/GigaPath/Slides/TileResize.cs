using GigaPath.Imaging;
using SkiaSharp;

namespace GigaPath.Slides;

/// <summary>Bicubic resize through SkiaSharp (Catmull-Rom), used until the Pillow-exact resampler is available.</summary>
internal static class TileResize
{
    public static RgbImage Bicubic(RgbImage src, int width, int height)
    {
        var info = new SKImageInfo(src.Width, src.Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        var rgba = new byte[src.Width * src.Height * 4];
        for (int i = 0, o = 0; i < src.Pixels.Length; i += 3, o += 4)
        {
            rgba[o] = src.Pixels[i];
            rgba[o + 1] = src.Pixels[i + 1];
            rgba[o + 2] = src.Pixels[i + 2];
            rgba[o + 3] = 255;
        }
        using var image = SKImage.FromPixelCopy(info, rgba);
        using var dst = new SKBitmap(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Opaque));
        image.ScalePixels(dst.PeekPixels(), new SKSamplingOptions(SKCubicResampler.CatmullRom));
        var outPx = dst.GetPixelSpan();
        var rgb = new byte[width * height * 3];
        for (int i = 0, o = 0; o < rgb.Length; i += 4, o += 3)
        {
            rgb[o] = outPx[i];
            rgb[o + 1] = outPx[i + 1];
            rgb[o + 2] = outPx[i + 2];
        }
        return new RgbImage(width, height, rgb);
    }
}
