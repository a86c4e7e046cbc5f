namespace GigaPath.Imaging;

/// <summary>
/// An 8-bit RGB image, interleaved and row-major (HWC), the value every stage passes around: slide regions,
/// decoded tiles, resized and cropped tiles. No alpha: slide reads are composited over white, and decoded images are
/// converted the way Pillow's <c>convert("RGB")</c> does.
/// </summary>
public sealed class RgbImage
{
    /// <summary>Width in pixels.</summary>
    public int Width { get; }
    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>Width × Height × 3 bytes, R G B per pixel, rows top to bottom.</summary>
    public byte[] Pixels { get; }

    /// <summary>Wraps <paramref name="pixels"/> (width × height × 3 bytes, RGB, rows top to bottom) without copying.</summary>
    public RgbImage(int width, int height, byte[] pixels)
    {
        if (width <= 0 || height <= 0)
            throw new ArgumentOutOfRangeException(nameof(width), $"image size must be positive, got {width}x{height}");
        if (pixels.Length != (long)width * height * 3)
            throw new ArgumentException($"expected {(long)width * height * 3} bytes for a {width}x{height} RGB image, got {pixels.Length}", nameof(pixels));
        Width = width;
        Height = height;
        Pixels = pixels;
    }

    /// <summary>A black image of the given size in pixels.</summary>
    public RgbImage(int width, int height) : this(width, height, new byte[checked(width * height * 3)]) { }

    /// <summary>Bytes per row: Width × 3.</summary>
    public int Stride => Width * 3;

    /// <summary>A copy of the rectangle [x, x+w) × [y, y+h), which must lie inside the image.</summary>
    public RgbImage Crop(int x, int y, int w, int h)
    {
        if (x < 0 || y < 0 || w <= 0 || h <= 0 || x + w > Width || y + h > Height)
            throw new ArgumentOutOfRangeException(nameof(x), $"crop {w}x{h}+{x}+{y} is outside the {Width}x{Height} image");
        var dst = new byte[w * h * 3];
        for (int row = 0; row < h; row++)
            Buffer.BlockCopy(Pixels, ((y + row) * Width + x) * 3, dst, row * w * 3, w * 3);
        return new RgbImage(w, h, dst);
    }

    /// <summary>
    /// Writes the image as a PNG to <paramref name="path"/>, atomically: a temporary file is written and then renamed, so
    /// a reader never sees a partial file and an interrupted write leaves an earlier file as it was.
    /// </summary>
    /// <param name="path">The PNG file to write; its folder is created when missing.</param>
    public void SavePng(string path) => AtomicFile.WriteAllBytes(path, ImageDecoder.EncodePng(this));
}
