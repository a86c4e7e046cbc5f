namespace GigaPath.Models.Tile;

/// <summary>The files of a tile encoder folder: config.json and one weight file (or a sharded index).</summary>
internal sealed record TileModelFiles(string ConfigPath, string WeightsPath)
{
    private static readonly string[] WeightCandidates = ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin"];

    /// <summary><paramref name="path"/> is the model folder, or a weight file whose folder holds config.json.</summary>
    public static TileModelFiles Find(string path)
    {
        string dir;
        string? weights = null;
        if (Directory.Exists(path))
        {
            dir = path;
        }
        else if (File.Exists(path))
        {
            dir = Path.GetDirectoryName(Path.GetFullPath(path))!;
            weights = path;
        }
        else
        {
            throw new GigaPathException($"{path}: tile encoder folder not found");
        }
        var config = Path.Combine(dir, "config.json");
        if (!File.Exists(config))
            throw new GigaPathException($"{dir}: no config.json (a tile encoder folder holds the timm config.json and model.safetensors)");
        weights ??= WeightCandidates.Select(c => Path.Combine(dir, c)).FirstOrDefault(File.Exists)
            ?? throw new GigaPathException($"{dir}: no model.safetensors, model.safetensors.index.json or pytorch_model.bin (convert a checkpoint with `gigapath convert-weights`)");
        return new TileModelFiles(config, weights);
    }
}
