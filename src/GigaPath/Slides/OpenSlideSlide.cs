using System.Buffers;
using System.Globalization;
using GigaPath.Imaging;
using GigaPath.Slides.Native;

namespace GigaPath.Slides;

/// <summary>
/// A slide read through OpenSlide (Aperio .svs, Hamamatsu, Leica, MIRAX, Philips, Sakura, Trestle, Ventana, tiled
/// TIFF). OpenSlide reports an error once and then refuses every later call on the handle, so the error is checked
/// after open and after every read and turned into a <see cref="GigaPathException"/> naming the file.
/// </summary>
internal sealed unsafe class OpenSlideSlide : ISlide
{
    /// <summary>Regions are read in squares of at most this many pixels a side: the same split OpenSlide makes
    /// internally (so the pixels are identical to one big read) while bounding the 4-byte-per-pixel buffer.</summary>
    private const int ChunkSide = 4096;

    private readonly OpenSlideLibrary _lib;
    private readonly OpenSlideHandle _handle;
    private readonly (long Width, long Height)[] _dimensions;
    private readonly double[] _downsamples;

    public string Path { get; }
    public string Vendor { get; }
    public int LevelCount => _dimensions.Length;
    public double? MppX { get; }
    public double? MppY { get; }
    public double? ObjectivePower { get; }
    public IReadOnlyDictionary<string, string> Properties { get; }
    public IReadOnlyDictionary<string, (long Width, long Height)> AssociatedImages { get; }

    /// <summary>The version of the OpenSlide library in use (e.g. "3.4.1"); throws when it is not installed.</summary>
    public static string LibraryVersion => OpenSlideLibrary.Instance.Version;

    /// <summary>
    /// The vendor OpenSlide would use for <paramref name="path"/>, or null when the file is not a format it reads
    /// (a plain PNG or JPEG, for instance).
    /// </summary>
    public static string? DetectVendor(string path)
    {
        var lib = OpenSlideLibrary.Instance;
        fixed (byte* p = OpenSlideLibrary.NulTerminated(path))
            return OpenSlideLibrary.Utf8(lib.DetectVendor(p));
    }

    /// <summary>Opens <paramref name="path"/>; prefer <see cref="SlideOpener.Open"/>, which also checks the file
    /// exists and falls back to plain images.</summary>
    public static OpenSlideSlide Open(string path)
    {
        var lib = OpenSlideLibrary.Instance;
        IntPtr raw;
        fixed (byte* p = OpenSlideLibrary.NulTerminated(path))
            raw = lib.Open(p);
        if (raw == IntPtr.Zero)
            throw new GigaPathException($"{path}: not a whole-slide image OpenSlide {lib.Version} can read (no known vendor format)");
        var handle = new OpenSlideHandle(lib, raw);
        try
        {
            return new OpenSlideSlide(lib, handle, path);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    private OpenSlideSlide(OpenSlideLibrary lib, OpenSlideHandle handle, string path)
    {
        _lib = lib;
        _handle = handle;
        Path = path;
        ThrowIfError("cannot open slide");

        IntPtr h = handle.DangerousGetHandle();
        int levels = lib.GetLevelCount(h);
        ThrowIfError("cannot read the pyramid levels of");
        if (levels < 1) throw new GigaPathException($"{path}: OpenSlide reports {levels} pyramid levels");
        _dimensions = new (long, long)[levels];
        _downsamples = new double[levels];
        for (int i = 0; i < levels; i++)
        {
            long w, hh;
            lib.GetLevelDimensions(h, i, &w, &hh);
            _dimensions[i] = (w, hh);
            _downsamples[i] = lib.GetLevelDownsample(h, i);
        }
        ThrowIfError("cannot read the pyramid levels of");

        var props = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var name in OpenSlideLibrary.StringList(lib.GetPropertyNames(h)))
            fixed (byte* n = OpenSlideLibrary.NulTerminated(name))
                props[name] = OpenSlideLibrary.Utf8(lib.GetPropertyValue(h, n)) ?? "";
        Properties = props;

        var associated = new Dictionary<string, (long, long)>(StringComparer.Ordinal);
        foreach (var name in OpenSlideLibrary.StringList(lib.GetAssociatedImageNames(h)))
        {
            long w, hh;
            fixed (byte* n = OpenSlideLibrary.NulTerminated(name))
                lib.GetAssociatedImageDimensions(h, n, &w, &hh);
            associated[name] = (w, hh);
        }
        AssociatedImages = associated;
        ThrowIfError("cannot read the metadata of");

        Vendor = props.GetValueOrDefault("openslide.vendor") ?? "unknown";
        MppX = PositiveNumber(props, "openslide.mpp-x");
        MppY = PositiveNumber(props, "openslide.mpp-y");
        ObjectivePower = PositiveNumber(props, "openslide.objective-power");
    }

    private static double? PositiveNumber(Dictionary<string, string> props, string name) =>
        props.TryGetValue(name, out var s)
        && double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v)
        && double.IsFinite(v) && v > 0 ? v : null;

    public (long Width, long Height) LevelDimensions(int level) => _dimensions[CheckLevel(level)];

    public double LevelDownsample(int level) => _downsamples[CheckLevel(level)];

    /// <summary>OpenSlide's choice of level to read for a wanted downsample: the finest level not finer than needed.</summary>
    public int BestLevelForDownsample(double downsample)
    {
        using var lease = new HandleLease(_handle);
        return _lib.GetBestLevelForDownsample(lease.Pointer, downsample);
    }

    public RgbImage ReadRegion(long level0X, long level0Y, int level, int width, int height)
    {
        CheckLevel(level);
        SlideRegions.CheckSize(Path, width, height);
        var rgb = new byte[(long)width * height * 3];
        double ds = _downsamples[level];
        int chunkW = Math.Min(width, ChunkSide), chunkH = Math.Min(height, ChunkSide);
        var buffer = ArrayPool<uint>.Shared.Rent(chunkW * chunkH);
        try
        {
            for (int cy = 0; cy < height; cy += ChunkSide)
                for (int cx = 0; cx < width; cx += ChunkSide)
                {
                    int w = Math.Min(ChunkSide, width - cx), h = Math.Min(ChunkSide, height - cy);
                    // Same level-0 origin arithmetic as openslide_read_region's own split (truncation toward zero).
                    long x0 = level0X + (long)(cx * ds), y0 = level0Y + (long)(cy * ds);
                    ReadArgb(buffer.AsSpan(0, w * h), x0, y0, level, w, h);
                    for (int row = 0; row < h; row++)
                        ArgbPixels.CompositeOverWhite(buffer.AsSpan(row * w, w),
                            rgb.AsSpan((int)(((long)(cy + row) * width + cx) * 3), w * 3));
                }
        }
        finally
        {
            ArrayPool<uint>.Shared.Return(buffer);
        }
        return new RgbImage(width, height, rgb);
    }

    /// <summary>Straight RGBA bytes of a region as openslide-python returns them (for checks against OpenSlide).</summary>
    internal byte[] ReadRegionRgba(long level0X, long level0Y, int level, int width, int height)
    {
        CheckLevel(level);
        SlideRegions.CheckSize(Path, width, height);
        var argb = new uint[(long)width * height];
        ReadArgb(argb, level0X, level0Y, level, width, height);
        var rgba = new byte[argb.LongLength * 4];
        ArgbPixels.Unpremultiply(argb, rgba);
        return rgba;
    }

    private void ReadArgb(Span<uint> dest, long x, long y, int level, int w, int h)
    {
        fixed (uint* d = dest)
        {
            using var lease = new HandleLease(_handle);
            _lib.ReadRegion(lease.Pointer, d, x, y, level, w, h);
        }
        ThrowIfError($"cannot read region {w}x{h} at level-0 ({x}, {y}), level {level}, of");
    }

    public RgbImage ReadAssociatedImage(string name)
    {
        if (!AssociatedImages.TryGetValue(name, out var size))
            throw new GigaPathException($"{Path}: no associated image '{name}' (has: {string.Join(", ", AssociatedImages.Keys)})");
        int w = checked((int)size.Width), h = checked((int)size.Height);
        SlideRegions.CheckSize(Path, w, h);
        var argb = new uint[(long)w * h];
        fixed (uint* d = argb)
        fixed (byte* n = OpenSlideLibrary.NulTerminated(name))
        {
            using var lease = new HandleLease(_handle);
            _lib.ReadAssociatedImage(lease.Pointer, n, d);
        }
        ThrowIfError($"cannot read associated image '{name}' of");
        var rgb = new byte[(long)w * h * 3];
        ArgbPixels.CompositeOverWhite(argb, rgb);
        return new RgbImage(w, h, rgb);
    }

    public RgbImage GetThumbnail(int maxSide) => SlideRegions.Thumbnail(this, maxSide);

    private int CheckLevel(int level) =>
        level >= 0 && level < _dimensions.Length
            ? level
            : throw new GigaPathException($"{Path}: level {level} does not exist (the slide has {_dimensions.Length} levels)");

    private void ThrowIfError(string what)
    {
        string? err;
        using (var lease = new HandleLease(_handle))
            err = OpenSlideLibrary.Utf8(_lib.GetError(lease.Pointer));
        if (err is not null)
            throw new GigaPathException($"{what} {Path}: OpenSlide says \"{err}\"");
    }

    public void Dispose() => _handle.Dispose();
}
