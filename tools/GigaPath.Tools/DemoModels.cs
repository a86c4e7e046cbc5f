using GigaPath.Models.Slide;
using GigaPath.Models.Tile;

namespace GigaPath.Tools;

/// <summary>
/// The UNTRAINED demo model pair: the same architectures as Prov-GigaPath, shrunk so that the whole pipeline runs in
/// seconds on a laptop, with weights drawn from fixed seeds (same files on every machine). Their embeddings carry no
/// pathology knowledge; they exist to show and test the plumbing.
/// </summary>
internal static class DemoModels
{
    public const int TileSeed = 20240522;
    public const int SlideSeed = 20240523;

    /// <summary>ViT (the giant's family: LayerScale, SwiGLU, CLS pooling) at 224 px, patch 16, width 192, 3 blocks, 3 heads.</summary>
    public static TileEncoderConfig Tile { get; } = new TileEncoderConfig
    {
        ImageSize = 224,
        PatchSize = 16,
        EmbedDim = 192,
        Depth = 3,
        HeadCount = 3,
        MlpRatio = 5.33334,
        LayerScaleInit = 1e-5,
        SourceName = "gigapath demo tile encoder (untrained)",
    }.Validate();

    /// <summary>LongNetViT taking the demo tile embeddings: width 128, 2 layers, segments [64, 128, 256], ratios [1, 2, 4].</summary>
    public static SlideEncoderConfig Slide { get; } = new SlideEncoderConfig
    {
        InputChannels = 192,
        EmbedDim = 128,
        Depth = 2,
        HeadCount = 4,
        FeedForwardDim = 256,
        SegmentLengths = [64, 128, 256],
        DilationRatios = [1, 2, 4],
        SourceName = "demo slide encoder",
    }.Validate();

    /// <summary>Writes <c>tile/</c> and <c>slide/</c> (config.json + model.safetensors, float32) under <paramref name="dir"/>.</summary>
    public static void Write(string dir)
    {
        using (var tile = TileEncoder.CreateRandom(Tile, TileSeed))
            tile.Save(Path.Combine(dir, "tile"));
        using (var slide = SlideEncoder.CreateRandom(Slide, SlideSeed))
            slide.Save(Path.Combine(dir, "slide"));
    }
}
