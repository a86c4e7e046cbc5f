using GigaPath.Imaging;
using SkiaSharp;

namespace GigaPath.Slides;

/// <summary>Recognises and decodes plain raster images (the non-slide inputs a slide path may name).</summary>
internal static class PlainImages
{
    /// <summary>True when the file starts with a PNG, JPEG or TIFF signature.</summary>
    public static bool IsPlainImage(string path)
    {
        Span<byte> head = stackalloc byte[8];
        int n;
        using (var fs = File.OpenRead(path))
            n = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        head = head[..n];
        return head.StartsWith((ReadOnlySpan<byte>)[0x89, (byte)'P', (byte)'N', (byte)'G'])
            || head.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF])
            || head.StartsWith((ReadOnlySpan<byte>)[(byte)'I', (byte)'I', 42, 0])
            || head.StartsWith((ReadOnlySpan<byte>)[(byte)'M', (byte)'M', 0, 42]);
    }

    public static RgbImage Decode(string path)
    {
        using var bitmap = SKBitmap.Decode(path)
            ?? throw new GigaPathException($"{path}: cannot decode the image");
        using var rgba = new SKBitmap(new SKImageInfo(bitmap.Width, bitmap.Height, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        if (!bitmap.CopyTo(rgba, SKColorType.Rgba8888))
            throw new GigaPathException($"{path}: cannot convert the image to RGB");
        var src = rgba.GetPixelSpan();
        var rgb = new byte[(long)bitmap.Width * bitmap.Height * 3];
        for (int i = 0, o = 0; o < rgb.Length; i += 4, o += 3)
        {
            rgb[o] = src[i];
            rgb[o + 1] = src[i + 1];
            rgb[o + 2] = src[i + 2];
        }
        return new RgbImage(bitmap.Width, bitmap.Height, rgb);
    }
}
