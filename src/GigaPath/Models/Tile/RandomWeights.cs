using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Models.Tile;

/// <summary>
/// Deterministic random weights for benchmarks, demos and tests, drawn in state-dict order from one seeded CPU
/// generator. The recipe is the tile fixture's: it keeps activations O(1) at any width, so timings and numerics
/// resemble a trained model's more than torch's default init would.
/// </summary>
internal static class RandomWeights
{
    public static void Fill(nn.Module model, long seed)
    {
        using var _ = torch.no_grad();
        var generator = new Generator((ulong)seed, CPU);
        foreach (var (name, p) in model.named_parameters())
        {
            using var scope = torch.NewDisposeScope();
            var n = torch.randn(p.shape, ScalarType.Float32, CPU, generator: generator);
            Tensor value = Kind(name) switch
            {
                ParamKind.ClsToken => n.mul(0.5),
                ParamKind.PosEmbed => n.mul(0.2),
                ParamKind.LayerScale => n.mul(0.25).add(0.5),
                ParamKind.NormWeight => n.mul(0.1).add(1.0),
                ParamKind.Bias => n.mul(0.1),
                _ => n.mul(1.0 / Math.Sqrt(p.numel() / p.shape[0])),
            };
            p.copy_(value);
        }
    }

    private enum ParamKind { ClsToken, PosEmbed, LayerScale, NormWeight, Bias, Weight }

    private static ParamKind Kind(string name)
    {
        if (name is "cls_token" or "reg_token") return ParamKind.ClsToken;
        if (name == "pos_embed") return ParamKind.PosEmbed;
        if (name.EndsWith(".gamma", StringComparison.Ordinal)) return ParamKind.LayerScale;
        if (name.EndsWith(".bias", StringComparison.Ordinal)) return ParamKind.Bias;
        bool isNorm = name.StartsWith("norm", StringComparison.Ordinal) || name.Contains(".norm", StringComparison.Ordinal);
        return isNorm ? ParamKind.NormWeight : ParamKind.Weight;
    }
}
