using GigaPath.Models.Heads;
using GigaPath.Models.Slide;
using GigaPath.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Training;

/// <summary>
/// One training step of a head on one slide, for checking gradients against the reference: training mode, dropout 0,
/// cross-entropy against the slide's label, then <c>logits</c>, <c>loss</c> and <c>grad.&lt;parameter&gt;</c> (float32, only
/// parameters that received a gradient) - the layout of the reference fixture's expected.safetensors.
/// </summary>
internal static class HeadGradients
{
    /// <summary>
    /// Loads a head with dropout forced to 0: a folder holding the reference's state dict (<c>model.safetensors</c>, keys
    /// <c>slide_encoder.*</c>, <c>classifier.0.*</c>) next to a <c>head.json</c> configuration, or any head checkpoint
    /// <see cref="HeadCheckpoint"/> reads (folder, .json or .safetensors).
    /// </summary>
    public static SlideHead LoadHead(string path)
    {
        string weights, configPath;
        var referenceWeights = Path.Combine(path, "model.safetensors");
        var headJson = Path.Combine(path, HeadCheckpoint.ConfigPathFor(HeadCheckpoint.DefaultFileName));
        if (Directory.Exists(path) && File.Exists(referenceWeights) && File.Exists(headJson))
        {
            (weights, configPath) = (referenceWeights, headJson);
        }
        else
        {
            weights = HeadCheckpoint.ResolveWeights(path);
            configPath = HeadCheckpoint.ConfigPathFor(weights);
        }
        var config = HeadConfig.FromJson(File.ReadAllText(configPath), configPath) with { Dropout = 0 };
        var head = HeadFactory.Create(config);
        try
        {
            using var source = SafeTensorsFile.Open(weights);
            StateDictLoader.Load(head, source);
        }
        catch
        {
            head.Dispose();
            throw;
        }
        return head;
    }

    /// <summary>
    /// Reads <c>tile_embeddings</c> [N, D], <c>coords</c> [N, 2] and <c>label</c> (one integer) from a safetensors file.
    /// </summary>
    public static (Tensor Features, Tensor Coords, long Label) LoadInput(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        foreach (var name in new[] { "tile_embeddings", "coords", "label" })
            if (!file.Contains(name)) throw new GigaPathException($"{path}: no '{name}' tensor (expected tile_embeddings [N, D], coords [N, 2], label [1])");
        using var label = file.Load("label", ScalarType.Int64);
        if (label.numel() != 1) throw new GigaPathException($"{path}: 'label' must hold one class index, has {label.numel()} values");
        return (file.Load("tile_embeddings", ScalarType.Float32), file.Load("coords", ScalarType.Float32), label.reshape(-1)[0].item<long>());
    }

    /// <summary>The step: gradients are zeroed first, the head is left in training mode with its gradients set.</summary>
    public static Dictionary<string, Tensor> Compute(SlideHead head, Tensor features, Tensor coords, long label)
    {
        if (label < 0 || label >= head.Config.NumClasses)
            throw new GigaPathException($"label {label} is not a class index of this head ({head.Config.NumClasses} classes)");
        head.train();
        head.zero_grad();
        var result = new Dictionary<string, Tensor>();
        using (var scope = NewDisposeScope())
        {
            var (logits, loss) = TrainingStep.Backward(head, new SlideTensors(features, coords, null), label, null);
            result["logits"] = Out(logits);
            result["loss"] = Out(loss);
        }
        foreach (var (name, parameter) in head.named_parameters())
            if (parameter.grad is { } grad) result[$"grad.{name}"] = Out(grad);
        return result;
    }

    /// <summary>
    /// Loads, computes and writes the step's outputs to <paramref name="outPath"/> (atomically); returns them.
    /// <paramref name="checkpoint"/> sets a slide head's layer checkpointing (both ways give the same gradients).
    /// </summary>
    public static Dictionary<string, Tensor> Run(string headPath, string inputPath, string outPath, Checkpointing checkpoint = Checkpointing.Auto)
    {
        using var head = LoadHead(headPath);
        if (head is SlideClassificationHead slideHead) slideHead.Checkpoint = checkpoint;
        var (features, coords, label) = LoadInput(inputPath);
        using (features)
        using (coords)
        {
            var result = Compute(head, features, coords, label);
            SafeTensorsWriter.Write(outPath, result, new Dictionary<string, string>
            {
                ["format"] = "pt",
                ["content"] = "one training step (dropout 0, cross-entropy): logits, loss, grad.<parameter>",
            });
            return result;
        }
    }

    private static Tensor Out(Tensor t) => t.detach().to(ScalarType.Float32, CPU).contiguous().clone().DetachFromDisposeScope();
}
