using System.Buffers.Binary;
using SkiaSharp;

namespace GigaPath.Imaging;

/// <summary>PNG, JPEG, BMP, GIF, WebP and the other formats SkiaSharp's codecs read, converted the way Pillow converts them.</summary>
internal static class SkiaDecoder
{
    public static RgbImage Decode(ReadOnlySpan<byte> encoded, string sourceName, long maxPixels)
    {
        using var data = SKData.CreateCopy(encoded);
        using var codec = SKCodec.Create(data)
            ?? throw new GigaPathException($"{sourceName}: not a readable image (unknown format, or a corrupt header)");
        var header = codec.Info;
        ImageDecoder.CheckPixelLimit(sourceName, header.Width, header.Height, maxPixels);

        var png = codec.EncodedFormat == SKEncodedImageFormat.Png ? PngHeader.TryRead(encoded) : null;
        return png is { BitDepth: 16 }
            ? Decode16BitPng(codec, png.Value, sourceName)
            : Decode8Bit(codec, sourceName);
    }

    private static RgbImage Decode8Bit(SKCodec codec, string sourceName)
    {
        var (w, h) = (codec.Info.Width, codec.Info.Height);
        var rgba = GetPixels(codec, SKColorType.Rgba8888, 4, sourceName);
        var rgb = new byte[(long)w * h * 3];
        for (long p = 0, q = 0; p < rgb.Length; p += 3, q += 4)
        {
            rgb[p] = rgba[q];
            rgb[p + 1] = rgba[q + 1];
            rgb[p + 2] = rgba[q + 2];
        }
        return new RgbImage(w, h, rgb);
    }

    /// <summary>
    /// Pillow does not scale 16-bit samples: colour and grey+alpha PNGs keep the high byte, and plain 16-bit grey
    /// opens as a 32-bit integer image whose conversion to RGB saturates at 255. Skia would rescale, so the exact
    /// 16-bit samples are decoded and reduced here.
    /// </summary>
    private static RgbImage Decode16BitPng(SKCodec codec, PngHeader png, string sourceName)
    {
        var (w, h) = (codec.Info.Width, codec.Info.Height);
        var rgba = GetPixels(codec, SKColorType.Rgba16161616, 8, sourceName);
        var samples = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, ushort>(rgba);
        var rgb = new byte[(long)w * h * 3];
        bool saturate = png.ColorType == PngHeader.Grayscale;
        for (long p = 0, q = 0; p < rgb.Length; p += 3, q += 4)
        {
            for (int c = 0; c < 3; c++)
            {
                int v = samples[(int)(q + c)];
                rgb[p + c] = saturate ? (byte)Math.Min(v, 255) : (byte)(v >> 8);
            }
        }
        return new RgbImage(w, h, rgb);
    }

    private static byte[] GetPixels(SKCodec codec, SKColorType colorType, int bytesPerPixel, string sourceName)
    {
        var header = codec.Info;
        // No colour space: Skia then leaves samples untransformed, as Pillow does (it ignores ICC profiles and gAMA).
        var alpha = header.AlphaType == SKAlphaType.Opaque ? SKAlphaType.Opaque : SKAlphaType.Unpremul;
        var info = new SKImageInfo(header.Width, header.Height, colorType, alpha);
        var buffer = new byte[(long)header.Width * header.Height * bytesPerPixel];
        SKCodecResult result;
        unsafe
        {
            fixed (byte* ptr = buffer)
                result = codec.GetPixels(info, (IntPtr)ptr, header.Width * bytesPerPixel, new SKCodecOptions(SKZeroInitialized.Yes));
        }
        if (result != SKCodecResult.Success)
        {
            var why = result switch
            {
                SKCodecResult.IncompleteInput => "the file is truncated",
                SKCodecResult.ErrorInInput => "the image data is corrupt",
                _ => $"decoding failed ({result})",
            };
            throw new GigaPathException($"{sourceName}: cannot decode the {codec.EncodedFormat} image: {why}");
        }
        return buffer;
    }

    /// <summary>The IHDR fields that decide how Pillow converts a PNG.</summary>
    private readonly record struct PngHeader(int BitDepth, int ColorType)
    {
        public const int Grayscale = 0;

        private static ReadOnlySpan<byte> Signature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

        public static PngHeader? TryRead(ReadOnlySpan<byte> encoded)
        {
            // Signature (8), IHDR length (4), "IHDR" (4), width (4), height (4), bit depth (1), colour type (1).
            if (encoded.Length < 26 || !encoded[..8].SequenceEqual(Signature)
                || BinaryPrimitives.ReadUInt32BigEndian(encoded[12..]) != 0x49484452u)
                return null;
            return new PngHeader(encoded[24], encoded[25]);
        }
    }
}
