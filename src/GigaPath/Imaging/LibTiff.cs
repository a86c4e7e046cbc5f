using System.Runtime.InteropServices;

namespace GigaPath.Imaging;

/// <summary>
/// The few libtiff 4.5+ entry points the TIFF decoder needs, bound at run time so that a missing library is a clear
/// error for TIFF files only. libtiff is already on every machine that has OpenSlide (Debian: libtiff6).
/// </summary>
internal sealed unsafe class LibTiff
{
    // libtiff.so.6 is the 4.5+ ABI, the first with TIFFClientOpenExt and per-handle error handlers.
    private static readonly string[] Candidates = OperatingSystem.IsWindows()
        ? ["libtiff-6.dll", "tiff.dll", "libtiff.dll"]
        : OperatingSystem.IsMacOS()
            ? ["libtiff.6.dylib", "libtiff.dylib", "/opt/homebrew/lib/libtiff.6.dylib", "/usr/local/lib/libtiff.6.dylib"]
            : ["libtiff.so.6", "libtiff.so"];

    private static readonly Lazy<(LibTiff? Library, string Error)> Loaded = new(Load);

    /// <summary>The bound library, or a <see cref="GigaPathException"/> that says how to install it.</summary>
    public static LibTiff Get(string sourceName) => Loaded.Value.Library
        ?? throw new GigaPathException($"{sourceName}: reading TIFF images needs libtiff 4.5 or newer ({Loaded.Value.Error}). " +
                                       "Install it (Debian/Ubuntu: apt-get install libtiff6; it comes with libopenslide0) or convert the image to PNG.");

    // TIFF* TIFFClientOpenExt(const char*, const char*, thandle_t, read, write, seek, close, size, map, unmap, TIFFOpenOptions*)
    public readonly delegate* unmanaged[Cdecl]<byte*, byte*, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr> ClientOpenExt;
    public readonly delegate* unmanaged[Cdecl]<IntPtr> OpenOptionsAlloc;
    public readonly delegate* unmanaged[Cdecl]<IntPtr, void> OpenOptionsFree;
    // void TIFFOpenOptionsSet{Error,Warning}HandlerExtR(TIFFOpenOptions*, TIFFErrorHandlerExtR, void* user_data)
    public readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr, void> OpenOptionsSetErrorHandler;
    public readonly delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr, void> OpenOptionsSetWarningHandler;
    public readonly delegate* unmanaged[Cdecl]<IntPtr, void> Close;

    // TIFFGetField(Defaulted) and TIFFSetField are variadic. Binding them with fixed integer/pointer parameters is sound on the
    // x86-64 (SysV and Windows) and Linux AAPCS64 ABIs, where such variadic arguments travel exactly like named ones.
    public readonly delegate* unmanaged[Cdecl]<IntPtr, uint, void*, int> GetField1;
    public readonly delegate* unmanaged[Cdecl]<IntPtr, uint, void*, int> GetFieldDefaulted1;
    public readonly delegate* unmanaged[Cdecl]<IntPtr, uint, void*, void*, int> GetField2;
    public readonly delegate* unmanaged[Cdecl]<IntPtr, uint, int, ushort*, int> SetFieldCountArray;

    public readonly delegate* unmanaged[Cdecl]<IntPtr, int> IsTiled;
    public readonly delegate* unmanaged[Cdecl]<IntPtr, long> ScanlineSize64;
    // int TIFFReadScanline(TIFF*, void* buf, uint32 row, uint16 sample)
    public readonly delegate* unmanaged[Cdecl]<IntPtr, void*, uint, ushort, int> ReadScanline;

    // int TIFFReadRGBAImageOriented(TIFF*, uint32 width, uint32 height, uint32* raster, int orientation, int stop_on_error)
    public readonly delegate* unmanaged[Cdecl]<IntPtr, uint, uint, uint*, int, int, int> ReadRgbaImageOriented;

    private LibTiff(IntPtr h)
    {
        ClientOpenExt = (delegate* unmanaged[Cdecl]<byte*, byte*, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr, IntPtr>)NativeLibrary.GetExport(h, "TIFFClientOpenExt");
        OpenOptionsAlloc = (delegate* unmanaged[Cdecl]<IntPtr>)NativeLibrary.GetExport(h, "TIFFOpenOptionsAlloc");
        OpenOptionsFree = (delegate* unmanaged[Cdecl]<IntPtr, void>)NativeLibrary.GetExport(h, "TIFFOpenOptionsFree");
        OpenOptionsSetErrorHandler = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr, void>)NativeLibrary.GetExport(h, "TIFFOpenOptionsSetErrorHandlerExtR");
        OpenOptionsSetWarningHandler = (delegate* unmanaged[Cdecl]<IntPtr, IntPtr, IntPtr, void>)NativeLibrary.GetExport(h, "TIFFOpenOptionsSetWarningHandlerExtR");
        Close = (delegate* unmanaged[Cdecl]<IntPtr, void>)NativeLibrary.GetExport(h, "TIFFClose");
        var getField = NativeLibrary.GetExport(h, "TIFFGetField");
        GetField1 = (delegate* unmanaged[Cdecl]<IntPtr, uint, void*, int>)getField;
        GetField2 = (delegate* unmanaged[Cdecl]<IntPtr, uint, void*, void*, int>)getField;
        GetFieldDefaulted1 = (delegate* unmanaged[Cdecl]<IntPtr, uint, void*, int>)NativeLibrary.GetExport(h, "TIFFGetFieldDefaulted");
        IsTiled = (delegate* unmanaged[Cdecl]<IntPtr, int>)NativeLibrary.GetExport(h, "TIFFIsTiled");
        ScanlineSize64 = (delegate* unmanaged[Cdecl]<IntPtr, long>)NativeLibrary.GetExport(h, "TIFFScanlineSize64");
        ReadScanline = (delegate* unmanaged[Cdecl]<IntPtr, void*, uint, ushort, int>)NativeLibrary.GetExport(h, "TIFFReadScanline");
        SetFieldCountArray = (delegate* unmanaged[Cdecl]<IntPtr, uint, int, ushort*, int>)NativeLibrary.GetExport(h, "TIFFSetField");
        ReadRgbaImageOriented = (delegate* unmanaged[Cdecl]<IntPtr, uint, uint, uint*, int, int, int>)NativeLibrary.GetExport(h, "TIFFReadRGBAImageOriented");
    }

    private static (LibTiff?, string) Load()
    {
        // Apple's arm64 ABI passes variadic arguments on the stack, so the fixed-signature variadic binding is unsafe there.
        var arch = RuntimeInformation.ProcessArchitecture;
        bool supported = OperatingSystem.IsLinux() ? arch is Architecture.X64 or Architecture.Arm64
            : (OperatingSystem.IsWindows() || OperatingSystem.IsMacOS()) && arch == Architecture.X64;
        if (!supported)
            return (null, $"the TIFF binding does not support {RuntimeInformation.OSDescription} on {arch}");
        foreach (var name in Candidates)
        {
            if (!NativeLibrary.TryLoad(name, out var handle)) continue;
            try
            {
                return (new LibTiff(handle), "");
            }
            catch (EntryPointNotFoundException e)
            {
                return (null, $"{name} is too old: {e.Message}");
            }
        }
        return (null, $"none of {string.Join(", ", Candidates)} could be loaded");
    }
}
