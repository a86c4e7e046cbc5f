using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GigaPath.Models.Tile;

#pragma warning disable IDE1006 // field names are checkpoint keys

/// <summary>
/// y = x·Wᵀ + b with <c>weight</c> [out, in] and <c>bias</c> [out], zero-initialised. <c>nn.Linear</c> would draw a
/// Kaiming-uniform init for every weight, seconds of work for the 1.1 B-parameter model that loading then overwrites.
/// </summary>
internal sealed class LinearLayer : nn.Module<Tensor, Tensor>
{
    private readonly Parameter weight;
    private readonly Parameter bias;

    public LinearLayer(long inFeatures, long outFeatures, Device? device = null, ScalarType? dtype = null) : base(nameof(LinearLayer))
    {
        var type = dtype ?? ScalarType.Float32;
        weight = new Parameter(torch.zeros(outFeatures, inFeatures, dtype: type, device: device));
        bias = new Parameter(torch.zeros(outFeatures, dtype: type, device: device));
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => nn.functional.linear(x, weight, bias);

    /// <summary>Output features [start, start + count) only: the same rows of weight and bias, without copying them.</summary>
    public Tensor ForwardOutputs(Tensor x, long start, long count) =>
        nn.functional.linear(x, weight.narrow(0, start, count), bias.narrow(0, start, count));
}
