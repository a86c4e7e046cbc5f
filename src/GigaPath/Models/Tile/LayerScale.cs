using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GigaPath.Models.Tile;

#pragma warning disable IDE1006 // field names are checkpoint keys

/// <summary>Per-channel learned scaling of a residual branch (timm <c>LayerScale</c>, key <c>gamma</c>).</summary>
internal sealed class LayerScale : nn.Module<Tensor, Tensor>
{
    private readonly Parameter gamma;

    public LayerScale(int dim, double initValues, Device? device = null, ScalarType? dtype = null) : base(nameof(LayerScale))
    {
        gamma = new Parameter(torch.full(new long[] { dim }, initValues, dtype: dtype ?? ScalarType.Float32, device: device));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => x.mul(gamma);

    /// <summary>residual + x·gamma in one pass (the same roundings as <c>residual.add(forward(x))</c> in float32).</summary>
    public Tensor AddTo(Tensor residual, Tensor x) => residual.addcmul(x, gamma, 1);
}
