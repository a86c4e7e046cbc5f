using SkiaSharp;

namespace GigaPath.Imaging;

/// <summary>
/// Decodes image files to 8-bit RGB with the same pixels as Pillow's <c>Image.open(f).convert("RGB")</c>, which is what
/// the Python reference feeds its transform: alpha is dropped (not composited), grayscale is replicated, palettes are
/// expanded, colour profiles and EXIF orientation are ignored. PNG, JPEG, BMP, GIF and WebP go through SkiaSharp; TIFF
/// goes through the system libtiff.
/// </summary>
public static class ImageDecoder
{
    /// <summary>64 megapixels: far above any tile, and still a bounded allocation (about 0.5 GB while decoding).</summary>
    public const long DefaultMaxPixels = 64L * 1024 * 1024;

    /// <summary>
    /// Bytes decoding a <paramref name="width"/> × <paramref name="height"/> image takes at its peak, for admission
    /// before decoding: the 8-bit RGBA buffer the codec fills (4 per pixel), the RGB image made from it (3), the
    /// codec's own working memory (a lossless WebP decodes into a 4-byte ARGB buffer of its own) and the resize's
    /// intermediate (1).
    /// </summary>
    public static long DecodingBytes(long width, long height) => width * height * 12;

    /// <summary>Decodes an encoded image held in memory.</summary>
    /// <param name="encoded">The file's bytes (PNG, JPEG, TIFF, ...).</param>
    /// <param name="sourceName">Names the image in error messages (usually its path).</param>
    /// <param name="maxPixels">Images whose header declares more pixels are rejected before any pixel memory is allocated.</param>
    /// <param name="onSize">
    /// Called with the width and height read from the header once they passed <paramref name="maxPixels"/>, before any
    /// pixel memory is allocated: a server admits the decode there (and refuses it by throwing).
    /// </param>
    public static RgbImage Decode(ReadOnlySpan<byte> encoded, string sourceName, long maxPixels = DefaultMaxPixels, Action<int, int>? onSize = null)
    {
        ArgumentNullException.ThrowIfNull(sourceName);
        if (maxPixels <= 0) throw new ArgumentOutOfRangeException(nameof(maxPixels), "the pixel limit must be positive");
        if (encoded.IsEmpty) throw new ImageDecodeException($"{sourceName}: the file is empty, not an image", sourceName);
        return TiffDecoder.IsTiff(encoded)
            ? TiffDecoder.Decode(encoded, sourceName, maxPixels, onSize)
            : SkiaDecoder.Decode(encoded, sourceName, maxPixels, onSize);
    }

    /// <summary>Reads and decodes an image file.</summary>
    public static RgbImage DecodeFile(string path, long maxPixels = DefaultMaxPixels)
    {
        ArgumentNullException.ThrowIfNull(path);
        byte[] bytes;
        try
        {
            bytes = File.ReadAllBytes(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new ImageDecodeException($"{path}: cannot read the image file ({e.Message})", path, e);
        }
        return Decode(bytes, path, maxPixels);
    }

    /// <summary>Encodes an image as an 8-bit RGB PNG (lossless), for writing tiles and thumbnails.</summary>
    public static byte[] EncodePng(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        var rgba = new byte[(long)image.Width * image.Height * 4];
        var src = image.Pixels;
        for (long i = 0, p = 0, q = 0; i < (long)image.Width * image.Height; i++, p += 3, q += 4)
        {
            rgba[q] = src[p];
            rgba[q + 1] = src[p + 1];
            rgba[q + 2] = src[p + 2];
            rgba[q + 3] = 255;
        }
        var info = new SKImageInfo(image.Width, image.Height, SKColorType.Rgba8888, SKAlphaType.Opaque);
        unsafe
        {
            fixed (byte* ptr = rgba)
            {
                using var pixmap = new SKPixmap(info, (IntPtr)ptr, info.RowBytes);
                using var data = pixmap.Encode(SKEncodedImageFormat.Png, 100)
                    ?? throw new GigaPathException($"PNG encoding of a {image.Width}x{image.Height} image failed");
                return data.ToArray();
            }
        }
    }

    internal static void CheckPixelLimit(string sourceName, int width, int height, long maxPixels, Action<int, int>? onSize = null)
    {
        if ((long)width * height > maxPixels)
            throw new ImageTooLargeException(
                $"{sourceName}: image is {width}x{height} = {(long)width * height:N0} pixels, above the limit of {maxPixels:N0} " +
                "(guard against decompression bombs; tile images are small - read whole slides with the slide reader)",
                width, height);
        onSize?.Invoke(width, height);
    }
}
