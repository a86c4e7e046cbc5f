using System.Collections;
using NUnit.Framework;

// No namespace: a SetUpFixture outside every namespace runs once, before any test of the assembly.

/// <summary>
/// Makes the suite immune to the caller's <c>GIGAPATH_*</c> variables: before any test, it removes those that change
/// what the product does (an API key in the environment, for one, lets <c>serve</c> bind beyond loopback), both for
/// in-process commands and for the child processes the tests start, which inherit this environment. Kept: the
/// variables that configure the tests themselves (<see cref="TestSettings"/>). It also applies the product's malloc tuning
/// (<see cref="GigaPath.Runtime.NativeAllocator.Configure"/>), as every entry point does at start-up.
/// </summary>
[SetUpFixture]
public sealed class TestEnvironment
{
    /// <summary>Read by the tests, not the product: the real-weights folder, the Python to use, interop opt-out.</summary>
    public static readonly string[] TestSettings = ["GIGAPATH_TILE_MODEL", "GIGAPATH_PYTHON", "GIGAPATH_INTEROP_OPTIONAL"];

    [OneTimeSetUp]
    public void ClearProductVariables()
    {
        // The allocator tuning every entry point (CLI, server, tools, benchmarks) applies at start-up, so that the suite
        // runs under the same malloc settings as the product.
        GigaPath.Runtime.NativeAllocator.Configure();
        foreach (DictionaryEntry e in Environment.GetEnvironmentVariables())
        {
            var name = (string)e.Key;
            if (name.StartsWith("GIGAPATH_", StringComparison.Ordinal) && !TestSettings.Contains(name))
            {
                TestContext.Progress.WriteLine($"test environment: ignoring {name} set by the caller");
                Environment.SetEnvironmentVariable(name, null);
            }
        }
    }
}
