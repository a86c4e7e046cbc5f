using System.Diagnostics;
using System.Net;
using System.Text;
using System.Text.RegularExpressions;

namespace GigaPath.Tests.Server;

/// <summary>
/// <c>gigapath serve</c> as a real child process on 127.0.0.1 with a free port, and a client for it: what a
/// deployment runs, with its own memory (see <see cref="ResidentBytes"/>). Disposing kills it if still running.
/// </summary>
internal sealed class ServerProcess : IAsyncDisposable
{
    private readonly StringBuilder _output = new();

    public Process Process { get; }
    public HttpClient Client { get; private set; } = null!;

    /// <summary>Everything the server printed so far.</summary>
    public string Output
    {
        get { lock (_output) return _output.ToString(); }
    }

    private ServerProcess(Process process) => Process = process;

    /// <summary>Starts <c>serve</c> with <paramref name="args"/> (plus <c>--urls http://127.0.0.1:0</c>) and waits until it listens.</summary>
    public static async Task<ServerProcess> StartAsync(params string[] args)
    {
        var cli = Path.Combine(AppContext.BaseDirectory, "GigaPath.Cli.dll");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { cli, "serve", "--urls", "http://127.0.0.1:0" }.Concat(args))
            psi.ArgumentList.Add(a);
        var server = new ServerProcess(Process.Start(psi)!);
        var listening = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        void OnLine(string? line)
        {
            if (line is null) return;
            lock (server._output) server._output.AppendLine(line);
            var m = Regex.Match(line, @"listening on (http://127\.0\.0\.1:\d+)");
            if (m.Success) listening.TrySetResult(m.Groups[1].Value);
        }
        server.Process.OutputDataReceived += (_, e) => OnLine(e.Data);
        server.Process.ErrorDataReceived += (_, e) => OnLine(e.Data);
        server.Process.BeginOutputReadLine();
        server.Process.BeginErrorReadLine();
        try
        {
            var url = await listening.Task.WaitAsync(TimeSpan.FromSeconds(60));
            server.Client = new HttpClient { BaseAddress = new Uri(url), Timeout = TimeSpan.FromSeconds(120) };
            return server;
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
    }

    /// <summary>Polls <c>/ready</c> until it answers 200.</summary>
    public async Task WaitUntilReadyAsync()
    {
        for (int i = 0; i < 600; i++)
        {
            using var ready = await Client.GetAsync("/ready");
            if (ready.StatusCode == HttpStatusCode.OK) return;
            await Task.Delay(100);
        }
        throw new TimeoutException("the server did not become ready in 60 s:\n" + Output);
    }

    /// <summary>The process's resident set (VmRSS of /proc/PID/status), in bytes.</summary>
    public long ResidentBytes() => ReadStatus("VmRSS:");

    /// <summary>The process's resident high-water mark (VmHWM), in bytes.</summary>
    public long PeakResidentBytes() => ReadStatus("VmHWM:");

    private long ReadStatus(string field)
    {
        var line = File.ReadLines($"/proc/{Process.Id}/status").First(l => l.StartsWith(field, StringComparison.Ordinal));
        var kb = long.Parse(line[field.Length..].Trim().Split(' ')[0], System.Globalization.CultureInfo.InvariantCulture);
        return kb * 1024;
    }

    /// <summary>Sends SIGTERM and waits for the exit.</summary>
    public async Task StopAsync()
    {
        using (var kill = Process.Start("kill", new[] { "-TERM", Process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture) }))
            await kill.WaitForExitAsync();
        await Process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
    }

    public ValueTask DisposeAsync()
    {
        Client?.Dispose();
        if (!Process.HasExited) Process.Kill(entireProcessTree: true);
        Process.Dispose();
        return ValueTask.CompletedTask;
    }
}
