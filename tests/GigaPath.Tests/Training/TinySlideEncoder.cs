using GigaPath.Models.Slide;

namespace GigaPath.Tests.Training;

/// <summary>A small random slide encoder (32-d input, 2 layers, 2 dilated branches) saved as a model folder.</summary>
public static class TinySlideEncoder
{
    public static SlideEncoderConfig Config { get; } = new()
    {
        InputChannels = SyntheticCohort.Dim,
        EmbedDim = 32,
        Depth = 2,
        HeadCount = 4,
        FeedForwardDim = 64,
        SegmentLengths = [16, 32],
        DilationRatios = [1, 2],
    };

    /// <summary>Writes the encoder to &lt;root&gt;/slide-model (once) and returns that folder.</summary>
    public static string Save(string root, long seed = 1)
    {
        var dir = Path.Combine(root, "slide-model");
        if (!File.Exists(Path.Combine(dir, "model.safetensors")))
        {
            using var encoder = SlideEncoder.CreateRandom(Config, seed);
            // CreateRandom draws every weight with std 0.02, which leaves projected tile features ~40x smaller than the
            // unit-scale sin-cos positions; scale the projection so a random encoder does not drown its input.
            using (TorchSharp.torch.no_grad())
                encoder.Model.patch_embed.proj.weight!.mul_(20);
            encoder.Save(dir);
        }
        return dir;
    }
}
