using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Models;

/// <summary>
/// The parameters of a model, read from a copy built on the meta device (shapes only, no storage), so even the
/// full-size tile encoder (1.1 billion parameters, 4.5 GB in float32) can be described without allocating it.
/// Returned by <see cref="Tile.TileEncoder.Describe"/> and <see cref="Slide.SlideEncoder.Describe"/>.
/// </summary>
public sealed record ModelDescription
{
    internal ModelDescription(string model, IReadOnlyList<ParameterShape> parameters)
    {
        Model = model;
        Parameters = parameters;
    }

    /// <summary>What was described (the config's one-line summary).</summary>
    public string Model { get; }

    /// <summary>Every parameter in state-dict order, with the checkpoint name a weight file must use.</summary>
    public IReadOnlyList<ParameterShape> Parameters { get; }

    /// <summary>Total number of scalar parameters.</summary>
    public long ParameterCount => Parameters.Sum(p => p.Count);

    /// <summary>Bytes the parameters take in float32 (4 bytes each).</summary>
    public long Float32Bytes => ParameterCount * 4;

    /// <summary>Builds <paramref name="build"/>'s module on the meta device and lists its parameters.</summary>
    internal static ModelDescription Of(string model, Func<nn.Module> build)
    {
        var previous = torch.get_default_device();
        torch.set_default_device(META);
        try
        {
            using var module = build();
            // A submodule that ignored the default device would have allocated real storage; refuse rather than hide it.
            if (module.parameters().FirstOrDefault(p => p.device_type != DeviceType.META) is { } real)
                throw new InvalidOperationException($"{model}: a parameter was allocated on {real.device} while describing on the meta device");
            var parameters = module.named_parameters()
                .Select(p => new ParameterShape(p.name, p.parameter.shape.ToArray()))
                .ToList();
            return new ModelDescription(model, parameters);
        }
        finally
        {
            torch.set_default_device(previous);
        }
    }
}

/// <summary>One parameter of a <see cref="ModelDescription"/>.</summary>
public sealed record ParameterShape
{
    internal ParameterShape(string name, IReadOnlyList<long> shape)
    {
        Name = name;
        Shape = shape;
    }

    /// <summary>State-dict name, e.g. <c>blocks.0.attn.qkv.weight</c>.</summary>
    public string Name { get; }

    /// <summary>Its shape, e.g. [4608, 1536].</summary>
    public IReadOnlyList<long> Shape { get; }

    /// <summary>Number of scalars: the product of <see cref="Shape"/>.</summary>
    public long Count => Shape.Aggregate(1L, (a, b) => a * b);
}
