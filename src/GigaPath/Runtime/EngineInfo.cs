using System.Reflection;

namespace GigaPath.Runtime;

/// <summary>Version and backend facts recorded in outputs for provenance.</summary>
public static class EngineInfo
{
    /// <summary>This library's version (e.g. "0.2.0").</summary>
    public static string Version { get; } =
        typeof(EngineInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0]
        ?? typeof(EngineInfo).Assembly.GetName().Version?.ToString()
        ?? "0.0.0";

    /// <summary>The engine's name recorded in output metadata.</summary>
    public const string Name = "GigaPath.Native";

    /// <summary>The version of the TorchSharp assembly in use.</summary>
    public static string TorchSharpVersion { get; } =
        typeof(TorchSharp.torch).Assembly.GetName().Version?.ToString() ?? "unknown";
}
