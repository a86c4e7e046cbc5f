namespace GigaPath.Tests;

/// <summary>Locates the reference fixtures copied into this repository (tests/GigaPath.Tests/Fixtures).</summary>
public static class FixturePaths
{
    private static readonly Lazy<string> RootLazy = new(() =>
    {
        var dir = new DirectoryInfo(AppContext.BaseDirectory);
        while (dir is not null)
        {
            var candidate = Path.Combine(dir.FullName, "tests", "GigaPath.Tests", "Fixtures");
            if (Directory.Exists(candidate)) return candidate;
            dir = dir.Parent;
        }
        throw new DirectoryNotFoundException("tests/GigaPath.Tests/Fixtures not found above " + AppContext.BaseDirectory);
    });

    public static string Root => RootLazy.Value;

    public static string Get(params string[] parts) => Path.Combine(new[] { Root }.Concat(parts).ToArray());

    /// <summary>A fresh temporary folder for one test, removed by the caller's TearDown if it wishes.</summary>
    public static string TempDir(string prefix = "gigapath-test")
    {
        var d = Path.Combine(Path.GetTempPath(), $"{prefix}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(d);
        return d;
    }
}
