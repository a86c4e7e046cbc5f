using GigaPath.Runtime;
using NUnit.Framework;

namespace GigaPath.Tests.Runtime;

/// <summary>For tests of bfloat16 paths that have no override: they are refused, by design, on CPUs without bf16 hardware.</summary>
public static class Bf16Hardware
{
    public static void Require() =>
        Assume.That(DTypeAdvisor.Bf16Here().Fast, Is.True, "bfloat16 is refused on this CPU (no bf16 matrix hardware): see DTypeAdvisorTests");
}

/// <summary>Sets <see cref="CpuFeatures.HideVariable"/> for the lifetime of the object (tests run one at a time).</summary>
public sealed class HiddenCpuFeatures : IDisposable
{
    private readonly string? _previous = Environment.GetEnvironmentVariable(CpuFeatures.HideVariable);

    public HiddenCpuFeatures(string features) => Environment.SetEnvironmentVariable(CpuFeatures.HideVariable, features);

    public void Dispose() => Environment.SetEnvironmentVariable(CpuFeatures.HideVariable, _previous);
}
