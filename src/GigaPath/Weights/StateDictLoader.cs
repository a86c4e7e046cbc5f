using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Weights;

internal sealed record LoadOptions
{
    /// <summary>Ignore tensors in the checkpoint that the model does not have (e.g. an MAE decoder or optimizer state).</summary>
    public bool AllowUnexpected { get; init; }
}

/// <summary>
/// Strict state-dict loading: every model key must be present with exactly the same shape, and (unless relaxed)
/// the checkpoint may hold nothing else. All problems are reported together, each with both shapes.
/// </summary>
internal static class StateDictLoader
{
    public static void Load(nn.Module module, ITensorSource source, LoadOptions? options = null)
    {
        options ??= new LoadOptions();
        var target = module.state_dict();
        var missing = new List<string>();
        var mismatched = new List<string>();
        foreach (var (name, tensor) in target)
        {
            if (!source.Contains(name))
            {
                missing.Add($"{name} {Shape(tensor.shape)}");
                continue;
            }
            var info = source.GetInfo(name);
            if (!info.Shape.SequenceEqual(tensor.shape))
                mismatched.Add($"{name}: checkpoint {info.ShapeText}, model {Shape(tensor.shape)}");
        }
        var unexpected = options.AllowUnexpected
            ? new List<string>()
            : source.Names.Where(n => !target.ContainsKey(n)).OrderBy(n => n, StringComparer.Ordinal)
                .Select(n => $"{n} {source.GetInfo(n).ShapeText}").ToList();

        if (missing.Count + mismatched.Count + unexpected.Count > 0)
        {
            var sb = new StringBuilder($"{source.Description}: checkpoint does not match the model");
            Append(sb, "missing keys", missing);
            Append(sb, "shape mismatches", mismatched);
            Append(sb, "unexpected keys (pass the allow-unexpected option to ignore them)", unexpected);
            throw new WeightFormatException(sb.ToString());
        }

        using var _ = torch.no_grad();
        foreach (var (name, tensor) in target)
            source.CopyInto(name, tensor);
    }

    private static void Append(StringBuilder sb, string title, List<string> items)
    {
        if (items.Count == 0) return;
        sb.Append($"\n  {items.Count} {title}:");
        foreach (var i in items.Take(50)) sb.Append("\n    ").Append(i);
        if (items.Count > 50) sb.Append($"\n    … and {items.Count - 50} more");
    }

    internal static string Shape(long[] s) => "[" + string.Join(", ", s) + "]";
}

/// <summary>Opens whatever weight file a model folder or path holds.</summary>
public static class TensorSources
{
    /// <summary>
    /// A path to a <c>.safetensors</c> file, a <c>model.safetensors.index.json</c>, a PyTorch checkpoint
    /// (<c>.bin</c>, <c>.pth</c>, <c>.pt</c>), or a folder holding one of those (safetensors preferred).
    /// </summary>
    public static ITensorSource Open(string path)
    {
        if (Directory.Exists(path))
        {
            return Open(ModelFiles.FindWeights(path)
                ?? throw new WeightFormatException($"{path}: no weight file in this folder (looked for {string.Join(", ", ModelFiles.WeightFileNames)})"));
        }
        if (!File.Exists(path))
            throw new WeightFormatException($"{path}: file not found");
        if (path.EndsWith(".index.json", StringComparison.OrdinalIgnoreCase))
            return ShardedSafeTensors.Open(path);
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            return SafeTensorsFile.Open(path);
        return PyTorchCheckpoint.Open(path);
    }
}
