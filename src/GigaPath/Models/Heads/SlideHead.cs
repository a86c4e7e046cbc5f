using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Models.Heads;

/// <summary>
/// One slide as a head consumes it: tile features [N, D], their coordinates [N, 2] (x, y, level-0 pixels) and the
/// slide vector [D] the linear probe uses (the other fields are null when a head does not need them). Tensors share
/// the head's device; features carry its compute dtype.
/// </summary>
internal sealed record SlideTensors(Tensor? Features, Tensor? Coords, Tensor? SlideVector)
{
    public Tensor RequireFeatures(string head) => Features ?? throw new ArgumentException($"{head} needs tile features");
    public Tensor RequireCoords(string head) => Coords ?? throw new ArgumentException($"{head} needs tile coordinates");
}

/// <summary>
/// A head's answer for one slide: logits [1, C]; for attention pooling also the softmax attention over tiles [N]
/// and the raw attention scores before the softmax [N] (what heatmaps usually show).
/// </summary>
internal sealed record HeadOutput(Tensor Logits, Tensor? Attention = null, Tensor? AttentionScores = null);

/// <summary>A downstream classification head. Its configuration is saved next to its weights (<see cref="HeadCheckpoint"/>).</summary>
internal abstract class SlideHead : nn.Module
{
    protected SlideHead(string name, HeadConfig config) : base(name)
    {
        Config = config;
    }

    public HeadConfig Config { get; }

    /// <summary>Logits for one slide (batch of one, as the reference fine-tunes).</summary>
    public abstract HeadOutput Forward(SlideTensors slide);

    /// <summary>Converts the head for computing in <paramref name="dtype"/> (bfloat16/float16 training and prediction copies).</summary>
    internal virtual void ToComputeType(ScalarType dtype) => this.to(dtype);

    /// <summary>
    /// The parameters a training step gives gradients: those that require them and that the forward uses. A parameter
    /// outside this set keeps no gradient (as in PyTorch, where it stays None and the optimizer skips it).
    /// </summary>
    internal virtual IEnumerable<TorchSharp.Modules.Parameter> TrainedParameters() => parameters().Where(p => p.requires_grad);

    /// <summary>Where training steps accumulate this head's gradients (made by the first step; see <see cref="Training.GradientBuffer"/>).</summary>
    internal Training.GradientBuffer? Gradients { get; set; }

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            Gradients?.Dispose();
            Gradients = null;
        }
        base.Dispose(disposing);
    }

    /// <summary>Parameters with their learning-rate scale and whether weight decay applies (the optimizer's groups).</summary>
    public virtual IEnumerable<(string Name, TorchSharp.Modules.Parameter Parameter, double LrScale, bool Decay)> ParameterGroups(double layerDecay) =>
        named_parameters().Where(p => p.parameter.requires_grad)
            .Select(p => (p.name, p.parameter, 1.0, p.parameter.dim() > 1));
}
