using System.Diagnostics;

namespace GigaPath.Tests;

/// <summary>
/// Runs Python scripts against a real PyTorch when this machine has one (<c>python3 -c "import torch"</c>), so
/// tests can check our files with the reference loader; tests call <see cref="RequireOrIgnore"/> otherwise.
/// </summary>
public static class PythonTorch
{
    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);
    // A pyenv or virtualenv python3 first on PATH may lack the system's python3-torch, so both are tried; the probe
    // only looks the module up, as importing torch takes seconds.
    private static readonly Lazy<string?> InterpreterLazy = new(() =>
        new[] { Environment.GetEnvironmentVariable("GIGAPATH_PYTHON"), "python3", "/usr/bin/python3" }
            .Where(p => !string.IsNullOrEmpty(p))
            .FirstOrDefault(p => Run(p!, "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)", Array.Empty<string>()).ExitCode == 0));

    public static bool IsAvailable => InterpreterLazy.Value is not null;

    public static void RequireOrIgnore()
    {
        if (!IsAvailable)
            NUnit.Framework.Assert.Ignore("python3 with torch is not installed here; the reference torch.load check was skipped (apt-get install python3-torch to run it)");
    }

    /// <summary>Runs <paramref name="script"/> with <c>python3 -c</c>; returns the exit code and combined output.</summary>
    public static (int ExitCode, string Output) Run(string script, IEnumerable<string> args) =>
        Run(InterpreterLazy.Value ?? "python3", script, args);

    private static (int ExitCode, string Output) Run(string interpreter, string script, IEnumerable<string> args)
    {
        var psi = new ProcessStartInfo(interpreter) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(script);
        foreach (var a in args) psi.ArgumentList.Add(a);
        try
        {
            using var p = Process.Start(psi)!;
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(Timeout))
            {
                p.Kill(entireProcessTree: true);
                return (-1, "python3 timed out");
            }
            return (p.ExitCode, stdout.Result + stderr.Result);
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            return (-1, interpreter + " not found: " + e.Message);
        }
    }

    /// <summary>
    /// Loads each file with <c>torch.load(..., weights_only=True)</c> and writes its float32 values' raw bytes to
    /// <c>file + ".raw"</c>; prints one "dtype shape" line per file. Throws with Python's output when it fails.
    /// </summary>
    public static string[] LoadWithWeightsOnly(params string[] files)
    {
        const string script = """
import sys, torch
for path in sys.argv[1:]:
    with open(path, 'rb') as f:
        data = f.read()
    import io
    t = torch.load(io.BytesIO(data), weights_only=True)
    assert isinstance(t, torch.Tensor), type(t)
    with open(path + '.raw', 'wb') as out:
        out.write(t.contiguous().numpy().tobytes())
    print(str(t.dtype), list(t.shape))
""";
        var (code, output) = Run(script, files);
        if (code != 0)
            throw new InvalidOperationException("torch.load failed:\n" + output);
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }
}
