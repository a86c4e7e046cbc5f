namespace GigaPath.IO;

/// <summary>Which file a path finally stands for, so that two names of one file (aliases) can be caught.</summary>
internal static class FileIdentity
{
    /// <summary>The full path with symbolic links followed.</summary>
    public static string Canonical(string path)
    {
        var full = Path.GetFullPath(path);
        var target = File.Exists(full) ? new FileInfo(full).ResolveLinkTarget(returnFinalTarget: true)?.FullName : null;
        return Path.GetFullPath(target ?? full);
    }

    /// <summary>Paths compare by letter case only where the file system usually does (Linux).</summary>
    public static StringComparer PathComparer => OperatingSystem.IsLinux() ? StringComparer.Ordinal : StringComparer.OrdinalIgnoreCase;
}
