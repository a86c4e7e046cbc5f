using System.Globalization;

namespace GigaPath.Pipeline;

/// <summary>
/// A per-slide lock file (<c>.locks/&lt;id&gt;.lock</c>) so that two processes sharing an output folder never work on
/// the same slide. The file is held open exclusively (.NET takes an advisory <c>flock</c> on Unix), so the kernel
/// releases it when its process dies however it dies: a killed run leaves no lock that blocks the next one. The
/// file records the holder's host, PID and start time for people looking at a stuck cohort.
/// </summary>
internal sealed class SlideLock : IDisposable
{
    private readonly FileStream _stream;
    private bool _released;

    public string Path { get; }

    private SlideLock(string path, FileStream stream)
    {
        Path = path;
        _stream = stream;
    }

    /// <summary>The lock, or null with <paramref name="holder"/> describing who has it.</summary>
    public static SlideLock? TryAcquire(string path, out string holder)
    {
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None);
        }
        catch (IOException)
        {
            holder = $"another process holds {path}";
            return null;
        }
        catch (UnauthorizedAccessException e)
        {
            throw new GigaPathException($"{path}: cannot create the slide's lock file ({e.Message})", e);
        }
        var info = string.Create(CultureInfo.InvariantCulture,
            $"pid {Environment.ProcessId}\nhost {Environment.MachineName}\nstarted {DateTimeOffset.UtcNow:O}\n");
        stream.SetLength(0);
        stream.Write(System.Text.Encoding.UTF8.GetBytes(info));
        stream.Flush();
        holder = "";
        return new SlideLock(path, stream);
    }

    /// <summary>Deletes the file, then lets go of it: a waiting process then finds no lock, or a fresh one.</summary>
    public void Dispose()
    {
        if (_released) return;
        _released = true;
        try
        {
            File.Delete(Path);
        }
        finally
        {
            _stream.Dispose();
        }
    }
}
