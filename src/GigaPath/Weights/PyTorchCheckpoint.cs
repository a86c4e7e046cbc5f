using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Weights;

/// <summary>
/// Reads PyTorch zip checkpoints (<c>torch.save</c> since 1.6: <c>pytorch_model.bin</c>, <c>.pth</c>, <c>.pt</c>)
/// without executing pickle code: <see cref="SafeUnpickler"/> interprets only the constructs a state dict needs.
/// A state dict nested under <c>"model"</c> or <c>"state_dict"</c> (as in Prov-GigaPath's <c>slide_encoder.pth</c>)
/// is found automatically.
/// </summary>
internal sealed class PyTorchCheckpoint : ITensorSource
{
    private readonly TorchZipArchive _archive;
    private readonly Dictionary<string, PickledTensor> _tensors;
    private readonly List<string> _order;

    public string Path { get; }
    public string Description { get; }
    public IReadOnlyCollection<string> Names => _order;

    /// <summary>The key the state dict was nested under, or null when the file is a bare state dict.</summary>
    public string? NestedKey { get; }

    private PyTorchCheckpoint(string path, TorchZipArchive archive, Dictionary<string, PickledTensor> tensors, List<string> order, string? nestedKey)
    {
        Path = path;
        _archive = archive;
        _tensors = tensors;
        _order = order;
        NestedKey = nestedKey;
        Description = nestedKey is null ? path : $"{path} (state dict under \"{nestedKey}\")";
    }

    public static PyTorchCheckpoint Open(string path, string? key = null)
    {
        if (!File.Exists(path))
            throw new WeightFormatException($"{path}: file not found");
        var archive = TorchZipArchive.Open(File.OpenRead(path), path);
        try
        {
            var (dict, nested) = FindStateDict(path, archive.Root, key);
            var tensors = new Dictionary<string, PickledTensor>(StringComparer.Ordinal);
            var order = new List<string>();
            foreach (var (k, v) in dict.Items)
            {
                if (k is not string name)
                    throw new WeightFormatException($"{path}: state dict has a non-string key '{k}'");
                if (v is not PickledTensor t)
                    throw new WeightFormatException($"{path}: state dict entry '{name}' is not a tensor ({SafeUnpickler.Describe(v)})");
                archive.CheckStorage(name, t);
                tensors[name] = t;
                order.Add(name);
            }
            return new PyTorchCheckpoint(path, archive, tensors, order, nested);
        }
        catch
        {
            archive.Dispose();
            throw;
        }
    }

    private static (PickleDict Dict, string? Nested) FindStateDict(string path, object? root, string? key)
    {
        if (root is not PickleDict top)
            throw new WeightFormatException($"{path}: checkpoint holds {SafeUnpickler.Describe(root)}, not a dict");
        if (key is not null)
        {
            if (top.Get(key) is PickleDict chosen) return (chosen, key);
            throw new WeightFormatException($"{path}: no state dict under key \"{key}\" (top-level keys: {string.Join(", ", top.Items.Select(i => i.Key))})");
        }
        if (top.Items.Count > 0 && top.Items.All(i => i.Value is PickledTensor))
            return (top, null);
        foreach (var candidate in new[] { "model", "state_dict", "model_state_dict", "module" })
        {
            if (top.Get(candidate) is PickleDict d && d.Items.All(i => i.Value is PickledTensor))
                return (d, candidate);
        }
        throw new WeightFormatException($"{path}: could not find a state dict (a dict of tensors) at the top level or under \"model\"/\"state_dict\"; top-level keys: {string.Join(", ", top.Items.Select(i => i.Key))}");
    }

    public bool Contains(string name) => _tensors.ContainsKey(name);

    public TensorInfo GetInfo(string name)
    {
        if (!_tensors.TryGetValue(name, out var t))
            throw new WeightFormatException($"{Description}: no tensor named '{name}'");
        return new TensorInfo(name, t.DType, t.Shape);
    }

    public Tensor Load(string name, ScalarType? dtype = null)
    {
        GetInfo(name);
        return _archive.LoadTensor(name, _tensors[name], dtype);
    }

    public void CopyInto(string name, Tensor destination)
    {
        var info = GetInfo(name);
        if (info.ElementCount != destination.numel())
            throw new WeightFormatException($"{Description}: tensor '{name}' has {info.ElementCount} elements {info.ShapeText}, destination has {destination.numel()}");
        using var _ = torch.no_grad();
        var t = _tensors[name];
        if (t.IsContiguous && destination.dtype == TensorDTypes.ToScalarType(t.DType) && destination.device_type == DeviceType.CPU && destination.is_contiguous())
        {
            _archive.ReadStorage(name, t, t.Offset, destination);
            return;
        }
        // The scope also frees the reshape view: an undisposed view would keep each converted temporary alive until
        // the GC runs, i.e. a second copy of the whole checkpoint while loading float32 weights into a bfloat16 model.
        using var scope = torch.NewDisposeScope();
        destination.copy_(Load(name).reshape(destination.shape));
    }

    public void Dispose() => _archive.Dispose();
}
