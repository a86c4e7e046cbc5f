using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GigaPath.Models.Tile;

#pragma warning disable IDE1006 // field names are checkpoint keys

/// <summary>
/// timm's <c>SwiGLUPacked</c> (GluMlp with SiLU, gate_last = false): fc1 produces value and gate packed side by side;
/// the hidden activation is silu(first half) ⊙ second half, then fc2.
/// </summary>
internal sealed class SwiGluMlp : nn.Module<Tensor, Tensor>
{
    private readonly LinearLayer fc1;
    private readonly LinearLayer fc2;

    public SwiGluMlp(int dim, int packedHidden, Device? device = null, ScalarType? dtype = null) : base(nameof(SwiGluMlp))
    {
        fc1 = new LinearLayer(dim, packedHidden, device, dtype);
        fc2 = new LinearLayer(packedHidden / 2, dim, device, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x)
    {
        var halves = fc1.forward(x).chunk(2, -1);
        return fc2.forward(nn.functional.silu(halves[0]).mul(halves[1]));
    }
}
