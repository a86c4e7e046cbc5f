using System.Runtime.InteropServices;

namespace GigaPath.IO;

/// <summary>
/// Which file a path finally stands for, and what kind of file it is, from <c>stat(2)</c> (symbolic links followed):
/// two names of one file (a symbolic link, a hard link, another letter case) have one <see cref="FileKey"/>, and inputs
/// that are not regular files (a FIFO would block the reader forever, a device would stream without end) are refused
/// before they are opened. Without <c>stat</c> (not Linux), files are told apart by their canonical path.
/// </summary>
internal static class FileIdentity
{
    /// <summary>What <see cref="Stat"/> found: the kind, and the identity of a file that exists.</summary>
    internal readonly record struct Status(FileKind Kind, FileKey Key, string? Error = null);

    /// <summary>One file: device and inode where <c>stat</c> is available, else the canonical path.</summary>
    internal readonly record struct FileKey(ulong Device, ulong Inode, string? CanonicalPath = null);

    internal enum FileKind { Missing, Regular, Directory, Fifo, CharacterDevice, BlockDevice, Socket, LinkLoop, Unreadable }

    /// <summary>The kind and identity of the file <paramref name="path"/> names, links followed; never opens it.</summary>
    public static Status Stat(string path)
    {
        if (!OperatingSystem.IsLinux() || Layout is null)
            return Fallback(path);
        var buffer = new byte[256];
        int rc;
        try
        {
            rc = StatCall(path, buffer);
        }
        catch (Exception e) when (e is EntryPointNotFoundException or DllNotFoundException)
        {
            return Fallback(path);
        }
        if (rc != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            return errno switch
            {
                ENOENT or ENOTDIR => new Status(FileKind.Missing, default),
                ELOOP => new Status(FileKind.LinkLoop, default, "a loop of symbolic links"),
                _ => new Status(FileKind.Unreadable, default, Marshal.GetPInvokeErrorMessage(errno)),
            };
        }
        var (modeOffset, _) = Layout.Value;
        ulong device = BitConverter.ToUInt64(buffer, 0), inode = BitConverter.ToUInt64(buffer, 8);
        uint mode = BitConverter.ToUInt32(buffer, modeOffset);
        var kind = (mode & 0xF000) switch
        {
            0x8000 => FileKind.Regular,
            0x4000 => FileKind.Directory,
            0x1000 => FileKind.Fifo,
            0x2000 => FileKind.CharacterDevice,
            0x6000 => FileKind.BlockDevice,
            0xC000 => FileKind.Socket,
            _ => FileKind.Unreadable,
        };
        return new Status(kind, new FileKey(device, inode));
    }

    /// <summary>
    /// Refuses a path that exists but is not a regular file (a FIFO, device or socket, or a loop of symbolic links),
    /// naming it and <paramref name="what"/> it was to be; missing files and directories are left to the caller's
    /// own message.
    /// </summary>
    public static void RequireRegularFile(string path, string what)
    {
        var status = Stat(path);
        var description = status.Kind switch
        {
            FileKind.Fifo => "a FIFO (named pipe)",
            FileKind.CharacterDevice => "a character device",
            FileKind.BlockDevice => "a block device",
            FileKind.Socket => "a socket",
            FileKind.LinkLoop => "a loop of symbolic links",
            FileKind.Unreadable when status.Error is not null => $"not readable ({status.Error})",
            _ => null,
        };
        if (description is not null)
            throw new GigaPathException($"{path}: is {description}, not a regular file; a {what} is read from a regular file");
    }

    /// <summary>Paths compare by letter case only where the file system usually does (Linux).</summary>
    public static StringComparer PathComparer => OperatingSystem.IsLinux() ? StringComparer.Ordinal : StringComparer.OrdinalIgnoreCase;

    private static Status Fallback(string path)
    {
        if (Directory.Exists(path)) return new Status(FileKind.Directory, default);
        if (!File.Exists(path)) return new Status(FileKind.Missing, default);
        try
        {
            var full = Path.GetFullPath(path);
            var target = new FileInfo(full).ResolveLinkTarget(returnFinalTarget: true)?.FullName;
            var canonical = Path.GetFullPath(target ?? full);
            return new Status(FileKind.Regular, new FileKey(0, 0, OperatingSystem.IsLinux() ? canonical : canonical.ToUpperInvariant()));
        }
        catch (IOException e)
        {
            return new Status(FileKind.LinkLoop, default, e.Message);
        }
    }

    private const int ENOENT = 2, ENOTDIR = 20, ELOOP = 40;

    /// <summary>Where <c>st_mode</c> sits in <c>struct stat</c> (st_dev and st_ino are the first two 64-bit fields on both), and glibc's old <c>_STAT_VER</c>.</summary>
    private static readonly (int ModeOffset, int StatVersion)? Layout = RuntimeInformation.ProcessArchitecture switch
    {
        Architecture.X64 => (24, 1),
        Architecture.Arm64 => (16, 0),
        _ => null,
    };

    private static bool _oldGlibc;

    private static int StatCall(string path, byte[] buffer)
    {
        if (!_oldGlibc)
        {
            try
            {
                return stat(path, buffer);
            }
            catch (EntryPointNotFoundException)
            {
                _oldGlibc = true; // glibc before 2.33 exports stat only as __xstat
            }
        }
        return __xstat(Layout!.Value.StatVersion, path, buffer);
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int stat([MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte[] buffer);

    [DllImport("libc", SetLastError = true)]
    private static extern int __xstat(int version, [MarshalAs(UnmanagedType.LPUTF8Str)] string path, byte[] buffer);
}
