using GigaPath.Imaging;

namespace GigaPath.Slides;

/// <summary>
/// A whole-slide image as a pyramid of levels. Level 0 is the full resolution; coordinates passed to
/// <see cref="ReadRegion"/> are level-0 pixels, sizes are pixels of the level read. Reads are thread-safe.
/// </summary>
public interface ISlide : IDisposable
{
    /// <summary>The file the slide was opened from.</summary>
    string Path { get; }

    /// <summary>"aperio", "generic-tiff", … for OpenSlide slides; <see cref="SlideOpener.PlainImageVendor"/> for plain image files.</summary>
    string Vendor { get; }

    /// <summary>The number of pyramid levels (1 for a plain image).</summary>
    int LevelCount { get; }

    /// <summary>Width and height in pixels of <paramref name="level"/>.</summary>
    /// <param name="level">0 (full resolution) to <see cref="LevelCount"/> - 1.</param>
    (long Width, long Height) LevelDimensions(int level);

    /// <summary>Level-0 pixels per pixel of <paramref name="level"/> (1 for level 0).</summary>
    double LevelDownsample(int level);

    /// <summary>Micrometres per level-0 pixel along x, from the file's metadata (or given by the user for plain
    /// images); null when the file does not say.</summary>
    double? MppX { get; }

    /// <summary>Micrometres per level-0 pixel along y; null when the file does not say.</summary>
    double? MppY { get; }

    /// <summary>Scanner objective magnification (e.g. 20, 40) when recorded.</summary>
    double? ObjectivePower { get; }

    /// <summary>All metadata properties, names as OpenSlide reports them (e.g. <c>openslide.mpp-x</c>).</summary>
    IReadOnlyDictionary<string, string> Properties { get; }

    /// <summary>The region of <paramref name="width"/> × <paramref name="height"/> pixels of <paramref name="level"/>
    /// whose top-left corner is at level-0 pixel (<paramref name="level0X"/>, <paramref name="level0Y"/>), composited
    /// over white (areas outside the slide read as white).</summary>
    /// <param name="level0X">Left edge in level-0 pixels.</param>
    /// <param name="level0Y">Top edge in level-0 pixels.</param>
    /// <param name="level">The level read.</param>
    /// <param name="width">Width in pixels of <paramref name="level"/>.</param>
    /// <param name="height">Height in pixels of <paramref name="level"/>.</param>
    RgbImage ReadRegion(long level0X, long level0Y, int level, int width, int height);

    /// <summary>Names of the associated images (label, macro, thumbnail, …) with their sizes.</summary>
    IReadOnlyDictionary<string, (long Width, long Height)> AssociatedImages { get; }

    /// <summary>The associated image <paramref name="name"/> (one of <see cref="AssociatedImages"/>).</summary>
    /// <param name="name">Its name, e.g. <c>label</c>.</param>
    RgbImage ReadAssociatedImage(string name);

    /// <summary>The whole slide scaled to fit in <paramref name="maxSide"/> × <paramref name="maxSide"/>, aspect
    /// kept, each output pixel the mean of the source pixels it covers.</summary>
    /// <param name="maxSide">Longest side of the thumbnail in pixels.</param>
    RgbImage GetThumbnail(int maxSide);
}
