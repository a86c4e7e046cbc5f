using System.Reflection;

namespace GigaPath.Runtime;

/// <summary>Version and backend facts recorded in outputs for provenance.</summary>
public static class EngineInfo
{
    public static string Version { get; } =
        typeof(EngineInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(EngineInfo).Assembly.GetName().Version?.ToString()
        ?? "0.0.0";

    public const string Name = "GigaPath.Native";

    public static string TorchSharpVersion { get; } =
        typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString() ?? "unknown";
}
