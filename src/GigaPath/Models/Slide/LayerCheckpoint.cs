using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Models.Slide;

/// <summary>
/// Activation checkpointing of one encoder layer (as torch.utils.checkpoint does): the forward runs the layer without
/// recording anything and keeps only its input; the backward re-runs it with autograd on - with the generator state
/// of the first run, so dropout draws the same masks - and back-propagates through it, which also accumulates the
/// layer's parameter gradients. A layer then costs autograd one L·D tensor instead of its ~30 L·D activations, for one
/// extra layer forward in the backward pass.
/// </summary>
internal sealed class LayerCheckpoint : autograd.SingleTensorFunction<LayerCheckpoint>
{
    public override string Name => "LongNetLayerCheckpoint";

    /// <summary>
    /// h: [B, L, D] float32, requiring grad. Returns the layer's output (a new tensor). With
    /// <paramref name="keepAttention"/> the first run also keeps the attention kernel's block results (~2·L·D floats),
    /// so the re-run only recombines them: the backward then costs the layer's linear layers once more, not its
    /// attention.
    /// </summary>
    public static Tensor Apply(LongNetEncoderLayer layer, Tensor h, AttentionBlocking blocking, int index, bool keepAttention) =>
        apply(h, new Call(layer, blocking, index, Generator.Default.get_state().DetachFromDisposeScope(),
            keepAttention ? new DilatedAttentionKernel.Saved() : null));

    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        var (h, call) = ((Tensor)vars[0], (Call)vars[1]);
        ctx.save_for_backward([h]);
        ctx.save_data("call", call);
        call.Layer.self_attn.Recording = call.Attention;
        return call.Layer.Forward(h, call.Blocking, null, call.Index, inPlace: false);
    }

    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor gradOutput)
    {
        GradientHandles.ReleasePrevious();
        var call = (Call)ctx.get_data("call");
        Tensor gradInput;
        using (var scope = NewDisposeScope())
        using (enable_grad())
        {
            var x = ctx.get_saved_variables()[0].detach().requires_grad_(true);
            var generator = Generator.Default;
            using var current = generator.get_state();
            generator.set_state(call.RngState);
            call.Layer.self_attn.Replaying = call.Attention;
            var y = call.Layer.Forward(x, call.Blocking, null, call.Index, inPlace: false);
            generator.set_state(current);
            y.backward([gradOutput]);
            gradInput = x.grad!.MoveToOuterDisposeScope();
        }
        gradOutput.Dispose();
        call.RngState.Dispose();
        GradientHandles.ReleasePrevious();
        return [GradientHandles.Keep(gradInput), null!];
    }

    /// <summary>The non-tensor arguments; the generator state is a CPU byte tensor owned here.</summary>
    private sealed record Call(LongNetEncoderLayer Layer, AttentionBlocking Blocking, int Index, Tensor RngState, DilatedAttentionKernel.Saved? Attention);
}
