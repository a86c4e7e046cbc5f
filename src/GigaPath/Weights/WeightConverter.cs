using GigaPath.Runtime;
using static TorchSharp.torch;

namespace GigaPath.Weights;

/// <summary>What <see cref="WeightConverter.Convert"/> wrote.</summary>
public sealed record ConversionResult
{
    internal ConversionResult(string output, int tensorCount, long parameterCount, long dataBytes, string sourceSha256)
    {
        Output = output;
        TensorCount = tensorCount;
        ParameterCount = parameterCount;
        DataBytes = dataBytes;
        SourceSha256 = sourceSha256;
    }

    /// <summary>The safetensors file written.</summary>
    public string Output { get; }

    /// <summary>Number of tensors written.</summary>
    public int TensorCount { get; }

    /// <summary>Number of scalars in those tensors.</summary>
    public long ParameterCount { get; }

    /// <summary>Bytes of tensor data written.</summary>
    public long DataBytes { get; }

    /// <summary>SHA-256 of the source checkpoint (also in the file's metadata).</summary>
    public string SourceSha256 { get; }
}

/// <summary>
/// Converts a checkpoint (PyTorch <c>.bin</c>/<c>.pth</c>, safetensors, or a sharded index) into one safetensors file
/// with provenance in <c>__metadata__</c>. Tensors are streamed one at a time, so a 4.5 GB checkpoint never sits in
/// memory twice; the output appears atomically when complete.
/// </summary>
public static class WeightConverter
{
    /// <summary>Converts <paramref name="input"/> into the safetensors file <paramref name="output"/>.</summary>
    /// <param name="input">Checkpoint file, sharded index or model folder.</param>
    /// <param name="output">The safetensors file to write.</param>
    /// <param name="key">Read the state dict nested under this key of a PyTorch checkpoint (found automatically when null).</param>
    /// <param name="dtype">Cast floating-point tensors to this dtype; integer tensors are kept as they are.</param>
    public static ConversionResult Convert(string input, string output, string? key = null, ScalarType? dtype = null)
    {
        IO.FileIdentity.RequireRegularFile(input, "checkpoint");
        if (dtype is { } d && !IsFloating(d))
            throw new GigaPathException($"{OptionNames.ConvertDType} {d}: weights can only be converted to a floating-point dtype (float32, bfloat16, float16)");
        if (File.Exists(input) && Path.GetFullPath(input) == Path.GetFullPath(output))
            throw new GigaPathException($"{output}: the output would overwrite the input checkpoint; choose another file");
        if (!output.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            throw new GigaPathException($"{output}: the output file name must end in .safetensors");

        using var source = Open(input, key);
        var hashed = source is ShardedSafeTensors sharded ? sharded.ShardFiles : [input];
        var entries = source.Names.Select(n =>
        {
            var info = source.GetInfo(n);
            var stored = TensorDTypes.ToScalarType(info.DType);
            var target = dtype is { } t && IsFloating(stored) ? TensorDTypes.FromScalarType(t) : info.DType;
            return new TensorInfo(n, target, info.Shape);
        }).ToList();
        if (entries.Count == 0)
            throw new WeightFormatException($"{source.Description}: holds no tensors");

        var provenance = new Provenance { SourceSha256 = FileHashing.Sha256(hashed) };
        var metadata = provenance.AddTo(new Dictionary<string, string>
        {
            ["format"] = "pt",
            ["source"] = Path.GetFileName(Path.GetFullPath(input)),
        });
        if (source is PyTorchCheckpoint { NestedKey: { } nested })
            metadata["source_key"] = nested;
        if (dtype is { } cast)
            metadata["dtype"] = DeviceSelection.Name(cast);

        SafeTensorsWriter.Write(output, entries, e => source.Load(e.Name, TensorDTypes.ToScalarType(e.DType)), metadata);
        return new ConversionResult(output, entries.Count, entries.Sum(e => e.ElementCount), entries.Sum(e => e.ByteLength), provenance.SourceSha256);
    }

    private static ITensorSource Open(string input, string? key)
    {
        if (key is null)
            return TensorSources.Open(input);
        if (input.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) || input.EndsWith(".json", StringComparison.OrdinalIgnoreCase) || Directory.Exists(input))
            throw new GigaPathException($"{input}: {OptionNames.ConvertKey} applies to a PyTorch checkpoint file (.bin, .pth, .pt) only");
        return PyTorchCheckpoint.Open(input, key);
    }

    private static bool IsFloating(ScalarType t) =>
        t is ScalarType.Float32 or ScalarType.Float64 or ScalarType.Float16 or ScalarType.BFloat16;
}
