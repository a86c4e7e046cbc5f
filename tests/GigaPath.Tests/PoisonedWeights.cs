using GigaPath.Weights;
using static TorchSharp.torch;

namespace GigaPath.Tests;

/// <summary>A copy of a model folder whose weights hold NaN: what a diverged training run or a bad download gives.</summary>
internal static class PoisonedWeights
{
    /// <summary>
    /// Copies <paramref name="modelDir"/> (config + <paramref name="weightsFile"/>) to <paramref name="target"/> with every
    /// value of the floating-point tensors whose name contains <paramref name="tensorNamePart"/> set to NaN.
    /// </summary>
    public static string Copy(string modelDir, string target, string tensorNamePart, string weightsFile = "model.safetensors")
    {
        Directory.CreateDirectory(target);
        foreach (var f in Directory.GetFiles(modelDir).Where(f => Path.GetFileName(f) != weightsFile))
            File.Copy(f, Path.Combine(target, Path.GetFileName(f)), overwrite: true);
        using var scope = NewDisposeScope();
        var tensors = new Dictionary<string, Tensor>();
        int poisoned = 0;
        using (var file = SafeTensorsFile.Open(Path.Combine(modelDir, weightsFile)))
        {
            foreach (var name in file.Names)
            {
                var t = file.Load(name);
                if (name.Contains(tensorNamePart, StringComparison.Ordinal) && t.is_floating_point())
                {
                    t.fill_(double.NaN);
                    poisoned++;
                }
                tensors[name] = t;
            }
        }
        if (poisoned == 0) throw new ArgumentException($"no floating-point tensor of {modelDir} has '{tensorNamePart}' in its name");
        SafeTensorsWriter.Write(Path.Combine(target, weightsFile), tensors);
        return target;
    }
}
