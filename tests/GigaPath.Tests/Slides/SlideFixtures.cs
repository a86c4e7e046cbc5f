using GigaPath.Slides;

namespace GigaPath.Tests.Slides;

/// <summary>Paths of the OpenSlide test slides in Fixtures/slides (see its README for what each one is).</summary>
internal static class SlideFixtures
{
    public static string Path(string name) => FixturePaths.Get("slides", name);

    public static string CmuSmallRegion => Path("CMU-1-Small-Region.svs");
    public static string SmallSvs => Path("small.svs");
    public static string BoxesTiff => Path("boxes.tiff");
    public static string BoxesPng => Path("boxes.png");
    public static string Unopenable => Path("unopenable.tiff");
    public static string Unreadable => Path("unreadable.svs");

    private static readonly Lazy<TilingPlan> CmuPlan = new(() =>
    {
        using var slide = SlideOpener.Open(CmuSmallRegion);
        return TilingPlanner.Plan(slide, new TilingOptions());
    });

    /// <summary>CMU-1-Small-Region planned with the default options, shared because planning scans the slide twice.</summary>
    public static TilingPlan CmuDefaultPlan => CmuPlan.Value;

    public static string Md5(byte[] bytes) => Convert.ToHexStringLower(System.Security.Cryptography.MD5.HashData(bytes));
}
