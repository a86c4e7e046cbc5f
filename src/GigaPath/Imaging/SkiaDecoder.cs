using System.Buffers.Binary;
using SkiaSharp;

namespace GigaPath.Imaging;

/// <summary>PNG, JPEG, BMP, GIF, WebP and the other formats SkiaSharp's codecs read, converted the way Pillow converts them.</summary>
internal static class SkiaDecoder
{
    public static RgbImage Decode(ReadOnlySpan<byte> encoded, string sourceName, long maxPixels, Action<int, int>? onSize = null)
    {
        using var data = SKData.CreateCopy(encoded);
        using var codec = SKCodec.Create(data)
            ?? throw new ImageDecodeException($"{sourceName}: not a readable image (unknown format, or a corrupt or truncated header)", sourceName);
        var header = codec.Info;
        ImageDecoder.CheckPixelLimit(sourceName, header.Width, header.Height, maxPixels, onSize);

        var png = codec.EncodedFormat == SKEncodedImageFormat.Png ? PngHeader.TryRead(encoded) : null;
        return png is { BitDepth: 16, ColorType: PngHeader.Grayscale }
            ? Gray16Png.Decode(encoded, header.Width, header.Height, sourceName)
            : DecodeRgba8888(codec, sourceName);
    }

    // 16-bit colour and grey+alpha PNGs come out of Skia with the high byte of each sample, which is also what
    // Pillow's RGB;16B / RGBA;16B / LA;16B unpackers keep.
    private static RgbImage DecodeRgba8888(SKCodec codec, string sourceName)
    {
        var (w, h) = (codec.Info.Width, codec.Info.Height);
        var rgba = GetRgbaPixels(codec, sourceName);
        var rgb = new byte[(long)w * h * 3];
        for (long p = 0, q = 0; p < rgb.Length; p += 3, q += 4)
        {
            rgb[p] = rgba[q];
            rgb[p + 1] = rgba[q + 1];
            rgb[p + 2] = rgba[q + 2];
        }
        return new RgbImage(w, h, rgb);
    }

    private static byte[] GetRgbaPixels(SKCodec codec, string sourceName)
    {
        var header = codec.Info;
        // No colour space: Skia then leaves samples untransformed, as Pillow does (it ignores ICC profiles and gAMA).
        var alpha = header.AlphaType == SKAlphaType.Opaque ? SKAlphaType.Opaque : SKAlphaType.Unpremul;
        var info = new SKImageInfo(header.Width, header.Height, SKColorType.Rgba8888, alpha);
        long size = (long)header.Width * header.Height * 4;
        if (size > Array.MaxLength)
            throw new GigaPathException($"{sourceName}: a {header.Width}x{header.Height} image is too large to decode in one piece");
        var buffer = new byte[size];
        SKCodecResult result;
        unsafe
        {
            fixed (byte* ptr = buffer)
                result = codec.GetPixels(info, (IntPtr)ptr, header.Width * 4, new SKCodecOptions(SKZeroInitialized.Yes));
        }
        if (result != SKCodecResult.Success)
        {
            var why = result switch
            {
                SKCodecResult.IncompleteInput => "the file is truncated",
                SKCodecResult.ErrorInInput => "the image data is corrupt",
                _ => $"decoding failed ({result})",
            };
            throw new ImageDecodeException($"{sourceName}: cannot decode the {codec.EncodedFormat} image: {why}", sourceName);
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
