using GigaPath.Models.Heads;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Training;

/// <summary>
/// Mixed precision with float32 master weights. In float32 the head trains directly. In bfloat16 a second copy of the
/// head computes forward and backward in bfloat16; its gradients are added into the float32 master's gradients after
/// every backward pass, and the optimizer updates the master, whose values are copied back before the next forward.
/// Small updates therefore are not lost to bfloat16's 8-bit mantissa.
/// </summary>
internal sealed class TrainingReplica : IDisposable
{
    private readonly List<(Tensor Master, Tensor Work)> _parameters = new();
    private readonly List<(Tensor Master, Tensor Work)> _buffers = new();

    public SlideHead Master { get; }
    public SlideHead Work { get; }
    public ScalarType DType { get; }
    public Device Device { get; }

    public TrainingReplica(HeadConfig config, Func<HeadConfig, SlideHead> createHead, Device device, ScalarType dtype)
    {
        DType = dtype;
        Device = device;
        Master = createHead(config);
        Master.to(device);
        if (dtype == ScalarType.Float32)
        {
            Work = Master;
            return;
        }
        Work = HeadFactory.Create(config);
        Work.to(device);
        Work.ToComputeType(dtype);
        var workParams = Work.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var (name, p) in Master.named_parameters())
            _parameters.Add((p, workParams[name]));
        var workBuffers = Work.named_buffers().ToDictionary(b => b.name, b => b.buffer);
        foreach (var (name, b) in Master.named_buffers())
            _buffers.Add((b, workBuffers[name]));
        PushWeights();
    }

    /// <summary>Copies the master's weights into the compute copy (no-op in float32).</summary>
    public void PushWeights()
    {
        if (ReferenceEquals(Work, Master)) return;
        using var _ = no_grad();
        foreach (var (m, w) in _parameters) w.copy_(m);
        foreach (var (m, w) in _buffers) w.copy_(m);
    }

    /// <summary>Adds the compute copy's gradients into the master's, in float32, and clears them (no-op in float32).</summary>
    public void AccumulateGradients()
    {
        if (ReferenceEquals(Work, Master)) return;
        using var _ = no_grad();
        foreach (var (m, w) in _parameters)
        {
            var g = w.grad;
            if (g is null) continue;
            var mg = m.grad;
            if (mg is null) m.grad = g.to(ScalarType.Float32);
            else mg.add_(g);
            g.zero_();
        }
    }

    public void SetTraining(bool training)
    {
        Master.train(training);
        Work.train(training);
    }

    public void Dispose()
    {
        if (!ReferenceEquals(Work, Master)) Work.Dispose();
    }
}
