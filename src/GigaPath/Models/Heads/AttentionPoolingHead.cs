using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GigaPath.Models.Heads;

/// <summary>
/// Gated attention-based multiple-instance pooling (Ilse et al., 2018): tiles are projected, h = ReLU(W x); each gets a
/// score s = w^T (tanh(V h) ⊙ sigmoid(U h)); a = softmax over the slide's tiles; the slide vector Σ a_i h_i goes through
/// one linear classifier. The attention is returned with the logits so heatmaps can show it.
/// </summary>
internal sealed class AttentionPoolingHead : SlideHead
{
#pragma warning disable IDE1006 // field names are the checkpoint keys
    private readonly Sequential fc;
    private readonly Linear attention_V;
    private readonly Linear attention_U;
    private readonly Linear attention_w;
    private readonly Linear classifier;
    private readonly Dropout dropout;
#pragma warning restore IDE1006

    public AttentionPoolingHead(HeadConfig config) : base(nameof(AttentionPoolingHead), config)
    {
        if (config.Kind != HeadKind.Abmil) throw new ArgumentException("not an attention pooling configuration", nameof(config));
        fc = nn.Sequential(("0", nn.Linear(config.InputDim, config.HiddenDim)), ("1", nn.ReLU()), ("2", nn.Dropout(config.Dropout)));
        attention_V = nn.Linear(config.HiddenDim, config.AttentionDim);
        attention_U = nn.Linear(config.HiddenDim, config.AttentionDim);
        attention_w = nn.Linear(config.AttentionDim, 1);
        classifier = nn.Linear(config.HiddenDim, config.NumClasses);
        dropout = nn.Dropout(config.Dropout);
        RegisterComponents();
    }

    public override HeadOutput Forward(SlideTensors slide)
    {
        var x = slide.RequireFeatures("attention pooling head");
        if (x.dim() != 2 || x.shape[1] != Config.InputDim)
            throw new GigaPathException($"attention pooling head: expected tile features [N, {Config.InputDim}], got [{string.Join(", ", x.shape)}]");
        var h = fc.forward(x);
        var gate = tanh(attention_V.forward(h)) * sigmoid(attention_U.forward(h));
        var scores = attention_w.forward(gate).squeeze(1);
        var attention = nn.functional.softmax(scores, 0);
        var pooled = attention.unsqueeze(0).matmul(h);
        var logits = classifier.forward(dropout.forward(pooled));
        return new HeadOutput(logits, attention, scores);
    }
}
