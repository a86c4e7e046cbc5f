using System.Text;

namespace GigaPath;

/// <summary>
/// Temp file + flush + rename: the only way outputs are written, so a reader never sees a half-written file and an
/// interrupted write leaves the previous file intact.
/// </summary>
internal static class AtomicFile
{
    public static void Write(string path, Action<Stream> write) =>
        WriteVia(path, tmp =>
        {
            // ReadWrite: some writers (PureHDF) need a readable, seekable stream.
            using var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 20);
            write(fs);
            fs.Flush(flushToDisk: true);
        });

    /// <summary>For writers that need a path (or a seekable read/write stream): they write the temporary file given.</summary>
    public static void WriteVia(string path, Action<string> writeTemporary)
    {
        var full = System.IO.Path.GetFullPath(path);
        var dir = System.IO.Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        var tmp = System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            writeTemporary(tmp);
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { }
            throw;
        }
    }

    public static void WriteAllText(string path, string text) =>
        Write(path, s => s.Write(Encoding.UTF8.GetBytes(text)));

    public static void WriteAllBytes(string path, ReadOnlySpan<byte> bytes)
    {
        var copy = bytes.ToArray();
        Write(path, s => s.Write(copy));
    }
}
