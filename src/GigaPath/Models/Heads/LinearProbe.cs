using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GigaPath.Models.Heads;

/// <summary>
/// Multinomial logistic regression on one vector per slide. Inputs are standardised with the training set's per-feature
/// mean and standard deviation, which are stored with the weights so prediction applies the same transform.
/// </summary>
internal sealed class LinearProbe : SlideHead
{
#pragma warning disable IDE1006 // field names are the checkpoint keys
    private readonly Tensor mean;
    private readonly Tensor std;
    private readonly Linear classifier;
#pragma warning restore IDE1006

    public LinearProbe(HeadConfig config) : base(nameof(LinearProbe), config)
    {
        if (config.Kind != HeadKind.Linear) throw new ArgumentException("not a linear probe configuration", nameof(config));
        mean = zeros(config.InputDim);
        std = ones(config.InputDim);
        classifier = nn.Linear(config.InputDim, config.NumClasses);
        RegisterComponents();
    }

    public Linear Classifier => classifier;

    /// <summary>Sets the standardisation from training vectors [B, D]; constant features keep a scale of 1.</summary>
    public void FitStandardization(Tensor trainVectors)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var m = trainVectors.mean([0L]);
        var s = trainVectors.std(0, unbiased: false);
        s = where(s > 1e-12, s, ones_like(s));
        mean.copy_(m);
        std.copy_(s);
    }

    /// <summary>Logits [B, C] for slide vectors [B, D].</summary>
    public Tensor Logits(Tensor vectors) => classifier.forward((vectors - mean) / std);

    public override HeadOutput Forward(SlideTensors slide) => new(Logits((slide.SlideVector ?? throw new ArgumentException("the linear probe needs a slide vector")).reshape(1, -1)));
}
