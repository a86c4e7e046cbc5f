using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GigaPath.Models.Tile;

#pragma warning disable IDE1006 // field names are checkpoint keys

/// <summary>Non-overlapping patch projection (<c>patch_embed.proj</c>): [B, C, H, W] -> [B, patches, D], patches row-major.</summary>
internal sealed class PatchEmbed : nn.Module<Tensor, Tensor>
{
    private readonly Conv2d proj;

    public PatchEmbed(int inChans, int dim, int patchSize, Device? device = null, ScalarType? dtype = null) : base(nameof(PatchEmbed))
    {
        proj = nn.Conv2d(inChans, dim, patchSize, stride: patchSize, bias: true, device: device, dtype: dtype);
        RegisterComponents();
    }

    public override Tensor forward(Tensor x) => proj.forward(x).flatten(2).transpose(1, 2);
}
