namespace GigaPath.Weights;

/// <summary>
/// Finds the config and the weight file of a model folder, or of a weight file given directly (its folder's
/// config.json then describes it): the one resolver behind both encoders and <see cref="TensorSources.Open"/>.
/// </summary>
internal sealed record ModelFiles(string? ConfigPath, string WeightsPath)
{
    /// <summary>Weight files looked for in a model folder, in order: safetensors first (no pickle to read).</summary>
    public static readonly IReadOnlyList<string> WeightFileNames =
        ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "slide_encoder.pth", "model.pth"];

    /// <summary>The first of <see cref="WeightFileNames"/> in <paramref name="dir"/>, or null.</summary>
    public static string? FindWeights(string dir) =>
        WeightFileNames.Select(n => Path.Combine(dir, n)).FirstOrDefault(File.Exists);

    /// <summary>
    /// <paramref name="path"/> is a model folder or a weight file (.safetensors, .index.json, .bin, .pth, .pt).
    /// <see cref="ConfigPath"/> is the config.json beside the weights, or null when there is none.
    /// </summary>
    /// <param name="path">Model folder or weight file.</param>
    /// <param name="what">The model kind, for messages ("tile encoder").</param>
    public static ModelFiles Find(string path, string what)
    {
        string dir;
        string? weights;
        if (Directory.Exists(path))
        {
            dir = path;
            weights = FindWeights(path)
                ?? throw new ModelNotFoundException($"{path}: no {what} weights in this folder (looked for {string.Join(", ", WeightFileNames)})", path);
        }
        else if (File.Exists(path))
        {
            weights = path;
            dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        }
        else
        {
            throw new ModelNotFoundException($"{path}: {what} folder or weight file not found", path);
        }
        var config = Path.Combine(dir, "config.json");
        return new ModelFiles(File.Exists(config) ? config : null, Path.GetFullPath(weights));
    }

    /// <summary>The files whose bytes identify the weights: the shards of a sharded checkpoint, else the file itself.</summary>
    public IReadOnlyList<string> HashedFiles(ITensorSource opened) =>
        opened is ShardedSafeTensors sharded ? sharded.ShardFiles : [WeightsPath];
}
