using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;

namespace GigaPath.Tests.Cli;

/// <summary>
/// The built <c>gigapath</c> CLI (GigaPath.Cli.dll, built next to the tests) as a real child process, for what only a
/// process shows: signals, exit codes, the kernel releasing its locks. Collects stdout and stderr lines; signals it.
/// </summary>
internal sealed class CliProcess : IDisposable
{
    // Linux signal numbers (x86-64 and arm64 alike).
    public const int SigInt = 2, SigKill = 9, SigTerm = 15, SigCont = 18, SigStop = 19;

    private readonly StringBuilder _output = new();
    private readonly List<(Func<string, bool> Match, TaskCompletionSource<string> Seen)> _waiters = [];

    public Process Process { get; }

    private CliProcess(Process process) => Process = process;

    public static CliProcess Start(params string[] args) => Start(new Dictionary<string, string>(), args);

    /// <summary>Starts the CLI with <paramref name="environment"/> added to this process's environment.</summary>
    public static CliProcess Start(IReadOnlyDictionary<string, string> environment, params string[] args)
    {
        // Through env --default-signal=INT: a suite started in the background (cmd &) inherits SIGINT ignored, the child
        // would too, and .NET then never sees a Ctrl-C. (The shell cannot undo an inherited ignore; coreutils' env can.)
        var psi = new ProcessStartInfo("env") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { "--default-signal=INT", "dotnet", Path.Combine(AppContext.BaseDirectory, "GigaPath.Cli.dll") })
            psi.ArgumentList.Add(a);
        foreach (var a in args) psi.ArgumentList.Add(a);
        foreach (var (name, value) in environment) psi.Environment[name] = value;
        var p = new CliProcess(Process.Start(psi)!);
        p.Process.OutputDataReceived += (_, e) => p.OnLine(e.Data);
        p.Process.ErrorDataReceived += (_, e) => p.OnLine(e.Data);
        p.Process.BeginOutputReadLine();
        p.Process.BeginErrorReadLine();
        return p;
    }

    /// <summary>Everything printed so far, stdout and stderr interleaved as they arrived.</summary>
    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    private void OnLine(string? line)
    {
        if (line is null) return;
        lock (_output)
        {
            _output.AppendLine(line);
            foreach (var w in _waiters.Where(w => w.Match(line)).ToList())
            {
                w.Seen.TrySetResult(line);
                _waiters.Remove(w);
            }
        }
    }

    /// <summary>The first line (already printed or still to come) that <paramref name="match"/> accepts.</summary>
    public Task<string> LineAsync(Func<string, bool> match)
    {
        lock (_output)
        {
            var seen = _output.ToString().Split('\n').Select(l => l.TrimEnd('\r')).FirstOrDefault(match);
            if (seen is not null) return Task.FromResult(seen);
            var tcs = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
            _waiters.Add((match, tcs));
            return tcs.Task;
        }
    }

    /// <summary>Waits for the exit (failing after <paramref name="timeout"/>, which only a hang reaches) and returns its code.</summary>
    public async Task<int> ExitCodeAsync(TimeSpan timeout)
    {
        await Process.WaitForExitAsync().WaitAsync(timeout);
        return Process.ExitCode;
    }

    public void Signal(int signal)
    {
        if (kill(Process.Id, signal) != 0)
            throw new InvalidOperationException($"kill({Process.Id}, {signal}) failed: errno {Marshal.GetLastPInvokeError()}");
    }

    /// <summary>SIGSTOP, then waits until the kernel reports the process stopped (state T in /proc/PID/stat).</summary>
    public void Freeze(TimeSpan timeout)
    {
        Signal(SigStop);
        var clock = Stopwatch.StartNew();
        while (State() != 'T')
        {
            if (clock.Elapsed > timeout) throw new TimeoutException($"process {Process.Id} did not stop");
            Thread.Sleep(1);
        }
    }

    private char State()
    {
        // /proc/PID/stat: "pid (comm) S ...": the state follows the last ')'.
        var stat = File.ReadAllText($"/proc/{Process.Id}/stat");
        return stat[stat.LastIndexOf(')') + 2];
    }

    public void Dispose()
    {
        try
        {
            if (!Process.HasExited) Process.Kill(entireProcessTree: true);
        }
        catch (InvalidOperationException)
        {
            // Already gone.
        }
        Process.Dispose();
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int kill(int pid, int sig);
}
