using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;

namespace GigaPath.Imaging;

/// <summary>
/// Opens TIFF data held in memory with the system libtiff (SkiaSharp has no TIFF codec), collecting libtiff's
/// messages for the error text instead of letting them reach stderr. <see cref="TiffPixels"/> reads the first page.
/// </summary>
internal static unsafe class TiffDecoder
{
    public static bool IsTiff(ReadOnlySpan<byte> encoded) =>
        encoded.Length >= 4 && (
            (encoded[0] == (byte)'I' && encoded[1] == (byte)'I' && encoded[3] == 0 && encoded[2] is 42 or 43) ||
            (encoded[0] == (byte)'M' && encoded[1] == (byte)'M' && encoded[2] == 0 && encoded[3] is 42 or 43));

    public static RgbImage Decode(ReadOnlySpan<byte> encoded, string sourceName, long maxPixels, Action<int, int>? onSize = null)
    {
        var lib = LibTiff.Get(sourceName);
        var errors = new ErrorLog();
        var errorsHandle = GCHandle.Alloc(errors);
        IntPtr options = lib.OpenOptionsAlloc();
        try
        {
            lib.OpenOptionsSetErrorHandler(options, (IntPtr)(delegate* unmanaged[Cdecl]<IntPtr, IntPtr, byte*, byte*, IntPtr, int>)&OnError, GCHandle.ToIntPtr(errorsHandle));
            lib.OpenOptionsSetWarningHandler(options, (IntPtr)(delegate* unmanaged[Cdecl]<IntPtr, IntPtr, byte*, byte*, IntPtr, int>)&OnWarning, IntPtr.Zero);
            fixed (byte* data = encoded)
            {
                var reader = new MemoryReader { Data = data, Length = encoded.Length };
                IntPtr tif;
                fixed (byte* name = Encoding.UTF8.GetBytes(sourceName + "\0"))
                fixed (byte* mode = "rm\0"u8)
                {
                    tif = lib.ClientOpenExt(name, mode, (IntPtr)(&reader),
                        (IntPtr)(delegate* unmanaged[Cdecl]<IntPtr, byte*, nint, nint>)&Read,
                        (IntPtr)(delegate* unmanaged[Cdecl]<IntPtr, byte*, nint, nint>)&Write,
                        (IntPtr)(delegate* unmanaged[Cdecl]<IntPtr, ulong, int, ulong>)&Seek,
                        (IntPtr)(delegate* unmanaged[Cdecl]<IntPtr, int>)&CloseProc,
                        (IntPtr)(delegate* unmanaged[Cdecl]<IntPtr, ulong>)&Size,
                        (IntPtr)(delegate* unmanaged[Cdecl]<IntPtr, void**, ulong*, int>)&Map,
                        (IntPtr)(delegate* unmanaged[Cdecl]<IntPtr, void*, ulong, void>)&Unmap,
                        options);
                }
                if (tif == IntPtr.Zero)
                    throw new ImageDecodeException($"{sourceName}: not a readable TIFF image{errors.Suffix}", sourceName);
                try
                {
                    return TiffPixels.Read(lib, tif, sourceName, maxPixels, () => errors.Suffix, onSize);
                }
                finally
                {
                    lib.Close(tif);
                }
            }
        }
        finally
        {
            lib.OpenOptionsFree(options);
            errorsHandle.Free();
        }
    }

    /// <summary>Collects libtiff's error messages for the exception text.</summary>
    private sealed class ErrorLog
    {
        public readonly List<string> Messages = [];
        public string Suffix => Messages.Count == 0 ? "" : ": " + string.Join("; ", Messages.Distinct().Take(3));
    }

    private struct MemoryReader
    {
        public byte* Data;
        public long Length;
        public long Position;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnError(IntPtr tif, IntPtr userData, byte* module, byte* format, IntPtr args)
    {
        if (userData != IntPtr.Zero && GCHandle.FromIntPtr(userData).Target is ErrorLog log)
            log.Messages.Add(FormatMessage(format, args));
        return 1; // handled: nothing reaches libtiff's global handler (stderr)
    }

    // On Linux (x86-64 and AAPCS64) a va_list parameter arrives as a pointer that can be handed on to vsnprintf.
    [DllImport("libc", EntryPoint = "vsnprintf")]
    private static extern int VsnPrintf(byte* buffer, nuint size, byte* format, IntPtr args);

    private static string FormatMessage(byte* format, IntPtr args)
    {
        if (!OperatingSystem.IsLinux())
            return Marshal.PtrToStringUTF8((IntPtr)format) ?? "";
        const int capacity = 512;
        var buffer = stackalloc byte[capacity];
        int n = VsnPrintf(buffer, capacity, format, args);
        return n < 0 ? Marshal.PtrToStringUTF8((IntPtr)format) ?? "" : Marshal.PtrToStringUTF8((IntPtr)buffer) ?? "";
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int OnWarning(IntPtr tif, IntPtr userData, byte* module, byte* format, IntPtr args) => 1;

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static nint Read(IntPtr handle, byte* buffer, nint size)
    {
        var r = (MemoryReader*)handle;
        long n = Math.Min((long)size, Math.Max(0, r->Length - r->Position));
        Buffer.MemoryCopy(r->Data + r->Position, buffer, size, n);
        r->Position += n;
        return (nint)n;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static nint Write(IntPtr handle, byte* buffer, nint size) => -1;

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static ulong Seek(IntPtr handle, ulong offset, int whence)
    {
        var r = (MemoryReader*)handle;
        long target = whence switch
        {
            0 => (long)offset,
            1 => r->Position + (long)offset,
            2 => r->Length + (long)offset,
            _ => -1,
        };
        if (target < 0) return ulong.MaxValue; // (toff_t)-1: libtiff's seek failure
        r->Position = target;
        return (ulong)target;
    }

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int CloseProc(IntPtr handle) => 0;

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static ulong Size(IntPtr handle) => (ulong)((MemoryReader*)handle)->Length;

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static int Map(IntPtr handle, void** baseAddress, ulong* size) => 0;

    [UnmanagedCallersOnly(CallConvs = [typeof(CallConvCdecl)])]
    private static void Unmap(IntPtr handle, void* baseAddress, ulong size) { }
}
