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

    /// <summary>
    /// The lock, or null with <paramref name="holder"/> describing who has it. Any other failure (a read-only file
    /// system, a full disk, no permission) throws a <see cref="GigaPathException"/> naming the file, and leaves no
    /// lock file behind.
    /// </summary>
    public static SlideLock? TryAcquire(string path, out string holder)
    {
        try
        {
            Directory.CreateDirectory(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path))!);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new GigaPathException($"{path}: cannot create the folder of the slide's lock file ({e.Message})", e);
        }
        FileStream stream;
        try
        {
            // Unbuffered: a failing write (a full disk) fails here, not again later when the stream is closed.
            stream = new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, bufferSize: 0);
        }
        catch (IOException e) when (HeldByAnother(e))
        {
            holder = $"another process holds {path}";
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new GigaPathException($"{path}: cannot create the slide's lock file ({e.Message})", e);
        }
        try
        {
            var info = string.Create(CultureInfo.InvariantCulture,
                $"pid {Environment.ProcessId}\nhost {Environment.MachineName}\nstarted {DateTimeOffset.UtcNow:O}\n");
            if (stream.CanSeek) stream.SetLength(0);
            stream.Write(System.Text.Encoding.UTF8.GetBytes(info));
            stream.Flush();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // We hold the file: remove it, or it would sit empty in .locks/ (a full disk, for instance).
            Release(path, stream);
            throw new GigaPathException($"{path}: cannot write the slide's lock file ({e.Message}); is the disk full?", e);
        }
        holder = "";
        return new SlideLock(path, stream);
    }

    /// <summary>
    /// Whether opening failed because another process holds the file's lock: .NET reports ERROR_SHARING_VIOLATION on
    /// Windows and the errno of the refused <c>flock</c> (EWOULDBLOCK) elsewhere. Anything else (a read-only file
    /// system, a full disk) is a real error.
    /// </summary>
    private static bool HeldByAnother(IOException e) =>
        e.HResult == (OperatingSystem.IsWindows() ? unchecked((int)0x80070020) : OperatingSystem.IsMacOS() || OperatingSystem.IsFreeBSD() ? 35 : 11);

    private static void Release(string path, FileStream stream)
    {
        // Errors here are reported with the one that brought us here; an undeletable file on a read-only disk is no lock.
        try
        {
            File.Delete(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
        }
        try
        {
            stream.Dispose();
        }
        catch (IOException)
        {
        }
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
