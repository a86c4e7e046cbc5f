namespace GigaPath.Slides;

/// <summary>Opens any slide path: an OpenSlide format, or a plain image when the caller gives its resolution.</summary>
public static class SlideOpener
{
    /// <summary>The <see cref="ISlide.Vendor"/> of a plain image (PNG, JPEG, TIFF) opened as a one-level slide.</summary>
    public const string PlainImageVendor = "image";

    /// <summary>
    /// The version of the OpenSlide library that reads whole-slide formats; throws <see cref="GigaPathException"/>
    /// when it is not installed.
    /// </summary>
    public static string OpenSlideVersion => OpenSlideSlide.LibraryVersion;

    /// <summary>Extensions only whole-slide formats use (a .tif may be a plain image; these never are).</summary>
    private static readonly HashSet<string> WholeSlideExtensions = new(StringComparer.OrdinalIgnoreCase)
    {
        ".svs", ".ndpi", ".vms", ".vmu", ".scn", ".mrxs", ".svslide", ".bif",
    };

    /// <summary>
    /// Opens <paramref name="path"/>. Files OpenSlide recognises open with OpenSlide (their MPP metadata is kept; an
    /// override is applied later by <see cref="TilingOptions.SlideMpp"/>). Plain PNG/JPEG/TIFF images that OpenSlide does
    /// not read open as a one-level slide, which needs <paramref name="slideMppOverride"/>. Refusals (a missing,
    /// truncated or unreadable file) throw <see cref="GigaPathException"/> naming the file.
    /// </summary>
    /// <param name="path">The slide file.</param>
    /// <param name="slideMppOverride">Micrometres per level-0 pixel; required for plain images.</param>
    public static ISlide Open(string path, double? slideMppOverride = null)
    {
        if (Directory.Exists(path))
            throw new GigaPathException($"{path}: is a directory, not a slide file");
        // Before anything opens it: a FIFO would block the reader forever, a loop of links is no file at all.
        IO.FileIdentity.RequireRegularFile(path, "slide");
        if (!File.Exists(path))
            throw new GigaPathException($"slide file not found: {path}");

        string? vendor;
        try
        {
            vendor = OpenSlideSlide.DetectVendor(path);
        }
        catch (GigaPathException) when (slideMppOverride is not null && PlainImages.IsPlainImage(path))
        {
            // OpenSlide is not installed, but a plain image with a given resolution needs no OpenSlide.
            return ImageFileSlide.Open(path, slideMppOverride.Value);
        }
        if (vendor is not null)
        {
            // Before OpenSlide reads anything: a level whose declared size its file's data cannot hold.
            if (!IsNdpi(path) && TiffStructure.FindBomb(path) is { } bomb)
                throw new GigaPathException($"{path}: {bomb}");
            try
            {
                return OpenSlideSlide.Open(path);
            }
            catch (GigaPathException) when (Damage(path) is { } cut)
            {
                throw Truncated(path, cut);
            }
        }
        // A whole-slide file cut short (a failed copy) is not recognised either: say so, rather than call it a plain image.
        if (Damage(path) is { } damage)
            throw Truncated(path, damage);
        if (WholeSlideExtensions.Contains(Path.GetExtension(path)))
            throw new GigaPathException(
                $"{path}: a {Path.GetExtension(path)} file that OpenSlide {OpenSlideSlide.LibraryVersion} does not recognise: truncated or corrupt? " +
                "Copy or export the slide again");
        if (PlainImages.IsPlainImage(path))
            return slideMppOverride is { } mpp
                ? ImageFileSlide.Open(path, mpp)
                : throw new GigaPathException(
                    $"{path}: not a whole-slide image (OpenSlide does not recognise it) but a plain image, which has no " +
                    $"resolution metadata; pass {OptionNames.SlideMpp} (micrometres per pixel) to read it as a one-level slide");
        throw new GigaPathException(
            $"{path}: not a whole-slide image OpenSlide {OpenSlideSlide.LibraryVersion} can read, nor a PNG/JPEG/TIFF image");
    }

    /// <summary>
    /// What is cut off or corrupt in a TIFF-based slide, or null. NDPI is skipped: it stores 64-bit offsets as their
    /// low 32 bits in a classic TIFF, which a plain TIFF walk would misread as damage.
    /// </summary>
    private static string? Damage(string path) => IsNdpi(path) ? null : TiffStructure.FindDamage(path);

    private static bool IsNdpi(string path) => Path.GetExtension(path).Equals(".ndpi", StringComparison.OrdinalIgnoreCase);

    private static GigaPathException Truncated(string path, string damage) =>
        new($"{path}: truncated or corrupt slide file: {damage}; copy or export the slide again");
}
