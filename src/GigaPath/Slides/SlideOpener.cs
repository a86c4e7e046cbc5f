namespace GigaPath.Slides;

/// <summary>Opens any slide path: an OpenSlide format, or a plain image when the user gives its resolution.</summary>
internal static class SlideOpener
{
    /// <summary>Extensions only whole-slide formats use (a .tif may be a plain image; these never are).</summary>
    private static readonly HashSet<string> WholeSlideExtensions = new(StringComparer.OrdinalIgnoreCase)
    {
        ".svs", ".ndpi", ".vms", ".vmu", ".scn", ".mrxs", ".svslide", ".bif",
    };

    /// <summary>
    /// Opens <paramref name="path"/>. Files OpenSlide recognises open as <see cref="OpenSlideSlide"/> (their MPP
    /// metadata is kept; an override is applied later by the tiling options). Plain PNG/JPEG/TIFF images that OpenSlide
    /// does not read open as <see cref="ImageFileSlide"/>, which needs <paramref name="slideMppOverride"/>.
    /// </summary>
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
