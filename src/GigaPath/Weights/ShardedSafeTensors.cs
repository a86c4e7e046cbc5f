using System.Text.Json;
using static TorchSharp.torch;

namespace GigaPath.Weights;

/// <summary>
/// A Hugging Face sharded checkpoint: <c>model.safetensors.index.json</c> with a <c>weight_map</c> from tensor name to
/// shard file. Each shard is memory-mapped on first use.
/// </summary>
internal sealed class ShardedSafeTensors : ITensorSource
{
    private readonly Dictionary<string, string> _weightMap;
    private readonly Dictionary<string, SafeTensorsFile> _open = new(StringComparer.Ordinal);
    private readonly string _folder;

    public string Description { get; }
    public IReadOnlyCollection<string> Names => _weightMap.Keys;

    /// <summary>Full paths of the distinct shard files, in ordinal name order (e.g. for hashing the weights).</summary>
    public IReadOnlyList<string> ShardFiles =>
        _weightMap.Values.Distinct().Order(StringComparer.Ordinal).Select(s => Path.Combine(_folder, s)).ToList();

    private ShardedSafeTensors(string indexPath, Dictionary<string, string> weightMap)
    {
        Description = indexPath;
        _folder = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
        _weightMap = weightMap;
    }

    public static ShardedSafeTensors Open(string indexPath)
    {
        if (!File.Exists(indexPath))
            throw new WeightFormatException($"{indexPath}: file not found");
        Dictionary<string, string> map = new(StringComparer.Ordinal);
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
            if (!doc.RootElement.TryGetProperty("weight_map", out var wm) || wm.ValueKind != JsonValueKind.Object)
                throw new WeightFormatException($"{indexPath}: no 'weight_map' object");
            foreach (var p in wm.EnumerateObject())
            {
                var file = p.Value.GetString();
                if (string.IsNullOrEmpty(file) || file.Contains("..") || Path.IsPathRooted(file))
                    throw new WeightFormatException($"{indexPath}: weight_map entry '{p.Name}' names an invalid shard '{file}'");
                map[p.Name] = file;
            }
        }
        catch (JsonException e)
        {
            throw new WeightFormatException($"{indexPath}: not valid JSON ({e.Message})", e);
        }
        var sharded = new ShardedSafeTensors(indexPath, map);
        foreach (var shard in map.Values.Distinct())
        {
            var shardPath = Path.Combine(sharded._folder, shard);
            if (!File.Exists(shardPath))
                throw new WeightFormatException($"{indexPath}: shard '{shard}' is missing");
        }
        return sharded;
    }

    private SafeTensorsFile ShardFor(string name)
    {
        if (!_weightMap.TryGetValue(name, out var shard))
            throw new WeightFormatException($"{Description}: no tensor named '{name}'");
        if (!_open.TryGetValue(shard, out var file))
        {
            file = SafeTensorsFile.Open(Path.Combine(_folder, shard));
            _open[shard] = file;
        }
        if (!file.Contains(name))
            throw new WeightFormatException($"{Description}: index maps '{name}' to '{shard}', which does not contain it");
        return file;
    }

    public bool Contains(string name) => _weightMap.ContainsKey(name);
    public TensorInfo GetInfo(string name) => ShardFor(name).GetInfo(name);
    public Tensor Load(string name, ScalarType? dtype = null) => ShardFor(name).Load(name, dtype);
    public void CopyInto(string name, Tensor destination) => ShardFor(name).CopyInto(name, destination);

    public void Dispose()
    {
        foreach (var f in _open.Values) f.Dispose();
        _open.Clear();
    }
}
