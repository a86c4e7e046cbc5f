using GigaPath.Imaging;

namespace GigaPath.Slides;

/// <summary>
/// A plain image (PNG, JPEG, TIFF: a tissue-microarray core, an exported region) used as a one-level slide. Image
/// files carry no trustworthy resolution, so the micrometres per pixel must come from the user.
/// </summary>
internal sealed class ImageFileSlide : ISlide
{
    private readonly RgbImage _image;

    public string Path { get; }
    public string Vendor => SlideOpener.PlainImageVendor;
    public int LevelCount => 1;
    public double? MppX { get; }
    public double? MppY => MppX;
    public double? ObjectivePower => null;
    public IReadOnlyDictionary<string, string> Properties { get; }
    public IReadOnlyDictionary<string, (long Width, long Height)> AssociatedImages { get; } =
        new Dictionary<string, (long, long)>();

    /// <summary>An image already in memory, named <paramref name="path"/> in messages and outputs.</summary>
    public ImageFileSlide(string path, RgbImage image, double mpp)
    {
        if (!double.IsFinite(mpp) || mpp <= 0)
            throw new GigaPathException($"{path}: slide MPP must be a positive number of micrometres per pixel, got {mpp}");
        Path = path;
        _image = image;
        MppX = mpp;
        Properties = new Dictionary<string, string>
        {
            ["gigapath.source"] = "image file",
            ["gigapath.mpp"] = mpp.ToString("R", System.Globalization.CultureInfo.InvariantCulture),
        };
    }

    /// <summary>Largest image opened: it is held decoded in memory (3 bytes a pixel, about 0.75 GB here); larger
    /// regions belong in a pyramidal TIFF, which OpenSlide reads piecewise.</summary>
    public const long MaxPixels = 256L * 1024 * 1024;

    /// <summary>Decodes <paramref name="path"/> whole, as Pillow's <c>convert("RGB")</c> would (alpha dropped);
    /// <paramref name="mpp"/> is the user's resolution.</summary>
    public static ImageFileSlide Open(string path, double mpp) => new(path, ImageDecoder.DecodeFile(path, MaxPixels), mpp);

    public (long Width, long Height) LevelDimensions(int level)
    {
        CheckLevel(level);
        return (_image.Width, _image.Height);
    }

    public double LevelDownsample(int level)
    {
        CheckLevel(level);
        return 1.0;
    }

    /// <summary>Pixels outside the image read as white, as they do from OpenSlide.</summary>
    public RgbImage ReadRegion(long level0X, long level0Y, int level, int width, int height)
    {
        CheckLevel(level);
        SlideRegions.CheckSize(Path, width, height);
        if (level0X >= 0 && level0Y >= 0 && level0X + width <= _image.Width && level0Y + height <= _image.Height)
            return _image.Crop((int)level0X, (int)level0Y, width, height);
        var dst = new byte[(long)width * height * 3];
        Array.Fill(dst, (byte)255);
        long x0 = Math.Max(0, level0X), x1 = Math.Min(_image.Width, level0X + width);
        long y0 = Math.Max(0, level0Y), y1 = Math.Min(_image.Height, level0Y + height);
        for (long y = y0; y < y1 && x0 < x1; y++)
            Buffer.BlockCopy(_image.Pixels, (int)((y * _image.Width + x0) * 3),
                dst, (int)(((y - level0Y) * width + (x0 - level0X)) * 3), (int)((x1 - x0) * 3));
        return new RgbImage(width, height, dst);
    }

    public RgbImage ReadAssociatedImage(string name) =>
        throw new GigaPathException($"{Path}: a plain image has no associated image '{name}'");

    public RgbImage GetThumbnail(int maxSide) => SlideRegions.Thumbnail(this, maxSide);

    private void CheckLevel(int level)
    {
        if (level != 0) throw new GigaPathException($"{Path}: level {level} does not exist (a plain image has only level 0)");
    }

    public void Dispose() { }
}
