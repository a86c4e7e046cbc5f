using GigaPath.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Models.Heads;

/// <summary>
/// A head on disk: <c>NAME.safetensors</c> (float32 weights, keys = the module's state dict) and <c>NAME.json</c>
/// (its <see cref="HeadConfig"/>) side by side. A folder holding <c>head.safetensors</c> works as a path too.
/// </summary>
internal static class HeadCheckpoint
{
    public const string DefaultFileName = "head.safetensors";

    public static string ConfigPathFor(string weightsPath) => Path.ChangeExtension(weightsPath, ".json");

    public static void Save(SlideHead head, string weightsPath)
    {
        if (!weightsPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            throw new GigaPathException($"{weightsPath}: a head checkpoint path must end in .safetensors");
        using var scope = NewDisposeScope();
        var tensors = head.state_dict().Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.detach().to(ScalarType.Float32).cpu())).ToList();
        SafeTensorsWriter.Write(weightsPath, tensors, new Dictionary<string, string> { ["format"] = HeadConfig.FormatName, ["kind"] = head.Config.Kind.ToString().ToLowerInvariant() });
        AtomicFile.WriteAllText(ConfigPathFor(weightsPath), head.Config.ToJson());
    }

    /// <summary>Resolves a folder, a .json or a .safetensors path to the weights file.</summary>
    public static string ResolveWeights(string path)
    {
        if (Directory.Exists(path)) path = Path.Combine(path, DefaultFileName);
        else if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) path = Path.ChangeExtension(path, ".safetensors");
        if (!File.Exists(path)) throw new GigaPathException($"{path}: head checkpoint not found");
        var cfg = ConfigPathFor(path);
        if (!File.Exists(cfg)) throw new GigaPathException($"{cfg}: head configuration not found (it is written next to the weights)");
        return path;
    }

    public static HeadConfig ReadConfig(string path)
    {
        var weights = ResolveWeights(path);
        var cfgPath = ConfigPathFor(weights);
        return HeadConfig.FromJson(File.ReadAllText(cfgPath), cfgPath);
    }

    /// <summary>Rebuilds the head from its configuration and loads its weights strictly (every key, every shape).</summary>
    public static SlideHead Load(string path)
    {
        var weights = ResolveWeights(path);
        var config = ReadConfig(weights);
        var head = HeadFactory.Create(config);
        using var source = SafeTensorsFile.Open(weights);
        StateDictLoader.Load(head, source);
        head.eval();
        return head;
    }
}

/// <summary>Builds an untrained head from its configuration.</summary>
internal static class HeadFactory
{
    public static SlideHead Create(HeadConfig config)
    {
        config.Validate("head configuration");
        return config.Kind switch
        {
            HeadKind.Linear => new LinearProbe(config),
            HeadKind.Abmil => new AttentionPoolingHead(config),
            HeadKind.Slide => new SlideClassificationHead(config),
            _ => throw new ArgumentOutOfRangeException(nameof(config), $"unknown head kind {config.Kind}"),
        };
    }
}
