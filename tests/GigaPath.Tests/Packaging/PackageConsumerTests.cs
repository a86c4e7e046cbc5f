using System.Diagnostics;
using System.Reflection;
using System.Text;
using GigaPath.Tests.Models.Tile;
using GigaPath.Weights;
using NUnit.Framework;
using static TorchSharp.torch;

namespace GigaPath.Tests.Packaging;

/// <summary>
/// The library as a new user meets it (issue 10): the packed package, consumed from a folder feed by a fresh console
/// project outside this repository (no Directory.Build.* of ours applies), running the README's quickstart verbatim.
/// It fails if the GLIBCXX fix stops reaching consumers: on Debian 12 TorchSharp then cannot load, and on any system
/// the build log no longer shows the patch applied to the consumer's output.
/// </summary>
[NonParallelizable]
public class PackageConsumerTests
{
    private static readonly TimeSpan StepTimeout = TimeSpan.FromMinutes(10);

    private static string RepoRoot => Path.GetFullPath(Path.Combine(FixturePaths.Root, "..", "..", ".."));

    /// <summary>The first C# block of the README's "Use as a library" section: the quickstart a user copies.</summary>
    internal static string ReadmeQuickstart() => CSharpBlock(Path.Combine(RepoRoot, "README.md"), "## Use as a library", 0);

    /// <summary>The second C# block of that section: async, progress, cancellation, bytes in and float[] out.</summary>
    internal static string ReadmeAsyncSample() => CSharpBlock(Path.Combine(RepoRoot, "README.md"), "## Use as a library", 1);

    [Test]
    public void QuickstartCopiesAreIdentical()
    {
        var quickstart = ReadmeQuickstart();
        Assert.That(quickstart, Does.Contain("EmbedImages").And.Contain("embeddings.safetensors"));
        Assert.That(File.ReadAllText(Path.Combine(RepoRoot, "samples", "Quickstart", "Program.cs")), Is.EqualTo(quickstart),
            "samples/Quickstart/Program.cs must be the README's first \"Use as a library\" block");
        Assert.That(CSharpBlock(Path.Combine(RepoRoot, "src", "GigaPath", "PACKAGE.md"), "## Quickstart", 0), Is.EqualTo(quickstart),
            "the package readme (src/GigaPath/PACKAGE.md) must show the README's quickstart");
    }

    [Test]
    public void ReadmeQuickstartRunsAgainstThePackedPackageOutsideTheRepository()
    {
        var work = Path.Combine(Path.GetTempPath(), $"gigapath-consumer-{Guid.NewGuid():N}");
        Assert.That(work.StartsWith(RepoRoot + Path.DirectorySeparatorChar, StringComparison.Ordinal), Is.False, "the consumer must live outside the repository");
        Directory.CreateDirectory(work);
        AssertNothingInherited(work);

        // A version no earlier run can have put into the NuGet cache (restore would take a cached copy over the feed's);
        // this run's copy is removed at the end.
        var version = $"0.0.0-consumertest.{Guid.NewGuid():N}";
        var packagesFolder = GlobalPackagesFolder();
        var feed = Path.Combine(work, "feed");
        var app = Path.Combine(work, "app");
        var timings = new List<string>();
        try
        {
            // The library exactly as built for this test run (same configuration), not rebuilt.
            var configuration = typeof(PackageConsumerTests).Assembly.GetCustomAttribute<AssemblyConfigurationAttribute>()!.Configuration;
            Dotnet(RepoRoot, timings, "pack", Path.Combine(RepoRoot, "src", "GigaPath", "GigaPath.csproj"), "--no-build",
                "-c", configuration, "-o", feed, $"-p:PackageVersion={version}", "-nodeReuse:false");
            Assert.That(File.Exists(Path.Combine(feed, $"GigaPath.{version}.nupkg")), "dotnet pack made no GigaPath package");

            // Restore from the feed and the local NuGet cache only: no network, and every dependency is hard-linkable.
            File.WriteAllText(Path.Combine(work, "nuget.config"), $"""
                <?xml version="1.0" encoding="utf-8"?>
                <configuration>
                  <packageSources>
                    <clear />
                    <add key="gigapath-feed" value="{feed}" />
                    <add key="local-cache" value="{packagesFolder}" />
                  </packageSources>
                </configuration>
                """);
            Dotnet(work, timings, "new", "console", "-o", app, "-n", "Consumer", "--no-restore");
            Dotnet(app, timings, "add", "package", "GigaPath", "--version", version, "--source", feed);
            File.WriteAllText(Path.Combine(app, "Program.cs"), ReadmeQuickstart());
            var build = Dotnet(app, timings, "build", "--no-restore", "-c", "Release", "-nodeReuse:false");

            var bin = Path.Combine(app, "bin", "Release", "net10.0");
            // One platform's libtorch, not the all-platform bundle.
            var otherPlatforms = Directory.EnumerateFiles(bin, "*", SearchOption.AllDirectories)
                .Where(f => Path.GetFileName(f) is "torch_cpu.dll" or "libtorch_cpu.dylib").ToList();
            Assert.That(otherPlatforms, Is.Empty, "the consumer got libtorch for other platforms");

            var fixture = FixturePaths.Get("preprocess");
            var run = Run(app, timings, "dotnet", Path.Combine(bin, "Consumer.dll"), TinyTileFixture.Dir,
                Path.Combine(fixture, "prov_normal_000_1.png"), Path.Combine(fixture, "01581x_25327y.png"));
            TestContext.Out.WriteLine("quickstart: " + run.Trim());
            // Without the fix the run above fails on Debian 12 (TorchSharp cannot load); this catches it anywhere.
            if (OperatingSystem.IsLinux())
            {
                Assert.That(build, Does.Contain("GigaPath: marked GLIBCXX_3.4.32 weak in")
                    .And.Contain(Path.Combine("runtimes", "linux-x64", "native", "libLibTorchSharp.so")),
                    "the package's build targets did not patch the consumer's libLibTorchSharp.so");
            }

            using var scope = NewDisposeScope();
            using var result = SafeTensorsFile.Open(Path.Combine(app, "embeddings.safetensors"));
            using var expected = SafeTensorsFile.Open(Path.Combine(fixture, "expected.safetensors"));
            var embeddings = result.Load("embeddings");
            Assert.That(result.GetInfo("embeddings").DType, Is.EqualTo(TensorDType.F32));
            Assert.That(embeddings.shape, Is.EqualTo(new long[] { 2, 48 }));
            var diff = TinyTileFixture.MaxAbsDiff(embeddings, expected.Load("embedding"));
            TestContext.Out.WriteLine($"max abs diff to the fixture embedding: {diff:E2}");
            Assert.That(diff, Is.LessThanOrEqualTo(1e-5));

            // The README's second block, the async and byte/float[] path, as the same consumer's program.
            File.WriteAllText(Path.Combine(app, "Program.cs"), ReadmeAsyncSample());
            Dotnet(app, timings, "build", "--no-restore", "-c", "Release", "-nodeReuse:false");
            var sample = Run(app, timings, "dotnet", Path.Combine(bin, "Consumer.dll"), TinyTileFixture.Dir,
                Path.Combine(fixture, "prov_normal_000_1.png"), Path.Combine(fixture, "01581x_25327y.png"));
            TestContext.Out.WriteLine("async sample: " + sample.Trim());
            Assert.That(sample, Does.Contain("embedded 2 images of 48 floats"));
        }
        finally
        {
            TestContext.Out.WriteLine(string.Join("\n", timings));
            TryDelete(Path.Combine(packagesFolder, "gigapath", version.ToLowerInvariant()));
            if (Directory.Exists(Path.Combine(packagesFolder, "gigapath")) && !Directory.EnumerateFileSystemEntries(Path.Combine(packagesFolder, "gigapath")).Any())
                TryDelete(Path.Combine(packagesFolder, "gigapath"));
            TryDelete(work);
        }
    }

    /// <summary>The C# block number <paramref name="index"/> (0-based) of the section <paramref name="heading"/>.</summary>
    private static string CSharpBlock(string markdown, string heading, int index)
    {
        var text = File.ReadAllText(markdown).ReplaceLineEndings("\n");
        int section = text.IndexOf("\n" + heading + "\n", StringComparison.Ordinal);
        Assert.That(section, Is.GreaterThanOrEqualTo(0), $"{markdown}: no section \"{heading}\"");
        const string fence = "\n```csharp\n";
        int nextSection = text.IndexOf("\n## ", section + 1, StringComparison.Ordinal);
        int start = section;
        for (int i = 0; i <= index; i++)
        {
            start = text.IndexOf(fence, start, StringComparison.Ordinal);
            Assert.That(start, Is.GreaterThanOrEqualTo(0), $"{markdown}: no C# block {index} after \"{heading}\"");
            Assert.That(nextSection < 0 || start < nextSection, $"{markdown}: C# block {index} after \"{heading}\" is in another section");
            start += fence.Length;
        }
        int end = text.IndexOf("\n```", start - 1, StringComparison.Ordinal);
        return text[start..(end + 1)];
    }

    /// <summary>No MSBuild or NuGet file of ours (or anyone's) above the consumer may shape its build.</summary>
    private static void AssertNothingInherited(string dir)
    {
        string[] inherited = ["Directory.Build.props", "Directory.Build.targets", "Directory.Packages.props", "Directory.Build.rsp"];
        for (var d = new DirectoryInfo(dir).Parent; d is not null; d = d.Parent)
        {
            foreach (var name in inherited)
                Assert.That(File.Exists(Path.Combine(d.FullName, name)), Is.False, $"{Path.Combine(d.FullName, name)} would apply to the consumer project");
        }
    }

    private static string GlobalPackagesFolder() =>
        Environment.GetEnvironmentVariable("NUGET_PACKAGES") is { Length: > 0 } configured
            ? configured
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");

    private static string Dotnet(string cwd, List<string> timings, params string[] args) => Run(cwd, timings, "dotnet", args);

    /// <summary>Runs a command to completion; fails the test with its output unless it exits with 0.</summary>
    private static string Run(string cwd, List<string> timings, string file, params string[] args)
    {
        var psi = new ProcessStartInfo(file) { WorkingDirectory = cwd, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        // The test host runs under `dotnet test`, whose MSBuild variables would steer the child builds.
        foreach (var key in psi.Environment.Keys.Where(k => k.StartsWith("MSBuild", StringComparison.OrdinalIgnoreCase)).ToList())
            psi.Environment.Remove(key);
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["DOTNET_NOLOGO"] = "1";
        psi.Environment["MSBUILDDISABLENODEREUSE"] = "1";
        var output = new StringBuilder();
        var watch = Stopwatch.StartNew();
        using var p = new Process { StartInfo = psi };
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.AppendLine(e.Data); };
        p.Start();
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        var command = $"{file} {string.Join(' ', args)}";
        if (!p.WaitForExit(StepTimeout))
        {
            p.Kill(entireProcessTree: true);
            Assert.Fail($"timed out after {StepTimeout}: {command}\n{output}");
        }
        p.WaitForExit();
        timings.Add($"{watch.Elapsed.TotalSeconds,6:F1} s  {command}");
        var text = output.ToString();
        Assert.That(p.ExitCode, Is.EqualTo(0), $"failed: {command} (in {cwd})\n{text}");
        return text;
    }

    private static void TryDelete(string path)
    {
        try
        {
            if (Directory.Exists(path)) Directory.Delete(path, recursive: true);
        }
        catch (IOException e)
        {
            TestContext.Out.WriteLine($"could not remove {path}: {e.Message}");
        }
    }
}
