using GigaPath.Models.Tile;
using GigaPath.Weights;
using static TorchSharp.torch;

namespace GigaPath.Tests.Models.Tile;

/// <summary>The tiny timm tile encoder fixture (embed_dim 48, depth 2) and its inputs.</summary>
public static class TinyTileFixture
{
    public static string Dir => FixturePaths.Get("tile_encoder_tiny");

    public static TileEncoderConfig Config => TileEncoderConfig.Load(FixturePaths.Get("tile_encoder_tiny", "config.json"));

    /// <summary>The fixture's <c>pixel_values</c> [2, 3, 224, 224] (a new tensor owned by the caller).</summary>
    public static Tensor Pixels()
    {
        using var input = SafeTensorsFile.Open(FixturePaths.Get("tile_encoder_tiny", "input.safetensors"));
        return input.Load("pixel_values");
    }

    public static double MaxAbsDiff(Tensor a, Tensor b)
    {
        if (!a.shape.SequenceEqual(b.shape))
            throw new InvalidOperationException($"shapes differ: [{string.Join(", ", a.shape)}] vs [{string.Join(", ", b.shape)}]");
        using var scope = NewDisposeScope();
        return a.to(ScalarType.Float64).sub(b.to(ScalarType.Float64)).abs().max().item<double>();
    }

    public static bool BitwiseEqual(Tensor a, Tensor b) => a.shape.SequenceEqual(b.shape) && a.equal(b).all().item<bool>();
}
