using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GigaPath.Models.Tile;

#pragma warning disable IDE1006 // field names are checkpoint keys

/// <summary>timm's <c>Mlp</c> with its default activation: fc1, exact (erf) GELU, fc2 (UNI's blocks).</summary>
internal sealed class GeluMlp : nn.Module<Tensor, Tensor>
{
    private readonly LinearLayer fc1;
    private readonly LinearLayer fc2;

    public GeluMlp(int dim, int hidden, Device? device = null, ScalarType? dtype = null) : base(nameof(GeluMlp))
    {
        fc1 = new LinearLayer(dim, hidden, device, dtype);
        fc2 = new LinearLayer(hidden, dim, device, dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => fc2.forward(nn.functional.gelu(fc1.forward(x)));
}
