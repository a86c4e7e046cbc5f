using System.Collections.Concurrent;
using System.Diagnostics;

namespace GigaPath.Tests;

/// <summary>
/// Runs Python scripts with the reference readers (PyTorch's <c>torch.load</c>, h5py), so the Interop tests can check
/// our files with the tools their users read them with. Only tests in the <see cref="Category"/> category use it: the
/// rest of the suite needs no Python.
/// </summary>
public static class PythonTorch
{
    /// <summary>The NUnit category of the tests that run the reference readers (in the default run).</summary>
    public const string Category = "Interop";

    /// <summary>Set to 1 to skip, rather than fail, the Interop tests on a machine without the Python modules.</summary>
    public const string OptionalVariable = "GIGAPATH_INTEROP_OPTIONAL";

    private static readonly TimeSpan Timeout = TimeSpan.FromMinutes(2);
    private static readonly ConcurrentDictionary<string, string?> Interpreters = new();

    /// <summary>
    /// The first python3 that has every module: a pyenv or virtualenv python3 first on PATH may lack the system's
    /// python3-torch, so the system one is tried too. The probe only looks the modules up (importing torch takes seconds).
    /// </summary>
    private static string? InterpreterWith(string[] modules) => Interpreters.GetOrAdd(string.Join(",", modules), _ =>
        new[] { Environment.GetEnvironmentVariable("GIGAPATH_PYTHON"), "python3", "/usr/bin/python3" }
            .Where(p => !string.IsNullOrEmpty(p))
            .FirstOrDefault(p => Run(p!, "import importlib.util, sys; sys.exit(any(importlib.util.find_spec(m) is None for m in sys.argv[1:]))", modules).ExitCode == 0));

    public static bool IsAvailable => InterpreterWith(["torch"]) is not null;

    /// <summary>
    /// Returns when python3 has <paramref name="modules"/> (default: torch); otherwise fails the test naming the Debian
    /// packages, or ignores it when <see cref="OptionalVariable"/> is 1. A missing reader never passes silently.
    /// </summary>
    public static void RequireOrIgnore(params string[] modules)
    {
        if (modules.Length == 0) modules = ["torch"];
        if (InterpreterWith(modules) is not null) return;
        var message = $"python3 with {string.Join(" and ", modules)} is not installed here (Debian: apt-get install " +
                      string.Join(" ", modules.Select(m => "python3-" + m)) + ")";
        if (Environment.GetEnvironmentVariable(OptionalVariable) == "1")
            NUnit.Framework.Assert.Ignore($"{message}; skipped because {OptionalVariable}=1");
        NUnit.Framework.Assert.Fail($"{message}: the {Category} tests check our outputs with the reference readers and must run " +
                                    $"(set {OptionalVariable}=1 to skip them on a machine without them)");
    }

    /// <summary>Runs <paramref name="script"/> with <c>python3 -c</c> (an interpreter with <paramref name="modules"/>, default torch); returns the exit code and combined output.</summary>
    public static (int ExitCode, string Output) Run(string script, IEnumerable<string> args, params string[] modules) =>
        Run(InterpreterWith(modules.Length == 0 ? ["torch"] : modules) ?? "python3", script, args);

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
