using System.Runtime.InteropServices;

namespace GigaPath.Slides.Native;

/// <summary>
/// The OpenSlide C API, bound by hand with <see cref="NativeLibrary"/> rather than <c>[DllImport]</c>: a missing
/// library then surfaces as one clear <see cref="GigaPathException"/> at the first slide opened (instead of a
/// <see cref="DllNotFoundException"/> from deep inside a read), and no assembly-wide import resolver is claimed, which
/// other native bindings in this assembly may need. Only the 3.4 API is used, which OpenSlide 4 keeps unchanged.
/// </summary>
internal sealed unsafe class OpenSlideLibrary
{
    /// <summary>Names tried in order: Debian/Ubuntu 3.4 soname, OpenSlide 4 soname, then macOS and Windows builds.</summary>
    internal static readonly string[] DefaultCandidates =
    [
        "libopenslide.so.0", "libopenslide.so.1", "libopenslide.so",
        "libopenslide.1.dylib", "libopenslide.0.dylib", "libopenslide-1.dll", "libopenslide-0.dll",
    ];

    private static readonly Lazy<OpenSlideLibrary> Shared = new(() => Load(DefaultCandidates));

    /// <summary>The process-wide binding; throws <see cref="GigaPathException"/> when OpenSlide is not installed.</summary>
    public static OpenSlideLibrary Instance => Shared.Value;

    public string LoadedName { get; }

    internal readonly delegate* unmanaged[Cdecl]<byte*, IntPtr> Open;
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, void> Close;
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, byte*> GetError;
    internal readonly delegate* unmanaged[Cdecl]<byte*, byte*> DetectVendor;
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, int> GetLevelCount;
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, int, long*, long*, void> GetLevelDimensions;
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, int, double> GetLevelDownsample;
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, double, int> GetBestLevelForDownsample;
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, uint*, long, long, int, long, long, void> ReadRegion;
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, byte**> GetPropertyNames;
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, byte*, byte*> GetPropertyValue;
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, byte**> GetAssociatedImageNames;
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, byte*, long*, long*, void> GetAssociatedImageDimensions;
    internal readonly delegate* unmanaged[Cdecl]<IntPtr, byte*, uint*, void> ReadAssociatedImage;
    internal readonly delegate* unmanaged[Cdecl]<byte*> GetVersion;

    private OpenSlideLibrary(string name, IntPtr lib)
    {
        LoadedName = name;
        IntPtr Sym(string symbol) => NativeLibrary.TryGetExport(lib, symbol, out var p)
            ? p
            : throw new GigaPathException($"the OpenSlide library '{name}' has no symbol '{symbol}'; install OpenSlide 3.4 or newer (Debian/Ubuntu: apt-get install libopenslide0)");
        Open = (delegate* unmanaged[Cdecl]<byte*, IntPtr>)Sym("openslide_open");
        Close = (delegate* unmanaged[Cdecl]<IntPtr, void>)Sym("openslide_close");
        GetError = (delegate* unmanaged[Cdecl]<IntPtr, byte*>)Sym("openslide_get_error");
        DetectVendor = (delegate* unmanaged[Cdecl]<byte*, byte*>)Sym("openslide_detect_vendor");
        GetLevelCount = (delegate* unmanaged[Cdecl]<IntPtr, int>)Sym("openslide_get_level_count");
        GetLevelDimensions = (delegate* unmanaged[Cdecl]<IntPtr, int, long*, long*, void>)Sym("openslide_get_level_dimensions");
        GetLevelDownsample = (delegate* unmanaged[Cdecl]<IntPtr, int, double>)Sym("openslide_get_level_downsample");
        GetBestLevelForDownsample = (delegate* unmanaged[Cdecl]<IntPtr, double, int>)Sym("openslide_get_best_level_for_downsample");
        ReadRegion = (delegate* unmanaged[Cdecl]<IntPtr, uint*, long, long, int, long, long, void>)Sym("openslide_read_region");
        GetPropertyNames = (delegate* unmanaged[Cdecl]<IntPtr, byte**>)Sym("openslide_get_property_names");
        GetPropertyValue = (delegate* unmanaged[Cdecl]<IntPtr, byte*, byte*>)Sym("openslide_get_property_value");
        GetAssociatedImageNames = (delegate* unmanaged[Cdecl]<IntPtr, byte**>)Sym("openslide_get_associated_image_names");
        GetAssociatedImageDimensions = (delegate* unmanaged[Cdecl]<IntPtr, byte*, long*, long*, void>)Sym("openslide_get_associated_image_dimensions");
        ReadAssociatedImage = (delegate* unmanaged[Cdecl]<IntPtr, byte*, uint*, void>)Sym("openslide_read_associated_image");
        GetVersion = (delegate* unmanaged[Cdecl]<byte*>)Sym("openslide_get_version");
    }

    /// <summary>Loads the first candidate that resolves; the error lists every name tried and how to install.</summary>
    internal static OpenSlideLibrary Load(IReadOnlyList<string> candidates)
    {
        foreach (var name in candidates)
            if (NativeLibrary.TryLoad(name, typeof(OpenSlideLibrary).Assembly, null, out var lib))
                return new OpenSlideLibrary(name, lib);
        throw new GigaPathException(
            $"OpenSlide is not installed (tried {string.Join(", ", candidates)}). Reading whole-slide images needs it: " +
            "on Debian/Ubuntu run 'apt-get install libopenslide0'; on macOS 'brew install openslide'; on Windows put " +
            $"libopenslide-1.dll on PATH. Plain PNG/JPEG/TIFF images can still be read with {OptionNames.SlideMpp}.");
    }

    /// <summary>The library's version string, e.g. "3.4.1".</summary>
    public string Version => Utf8(GetVersion()) ?? "unknown";

    internal static string? Utf8(byte* s) => s == null ? null : Marshal.PtrToStringUTF8((IntPtr)s);

    internal static byte[] NulTerminated(string s)
    {
        var bytes = new byte[System.Text.Encoding.UTF8.GetByteCount(s) + 1];
        System.Text.Encoding.UTF8.GetBytes(s, bytes);
        return bytes;
    }

    /// <summary>Reads a NULL-terminated array of C strings (property and associated-image names).</summary>
    internal static List<string> StringList(byte** list)
    {
        var result = new List<string>();
        if (list == null) return result;
        for (int i = 0; list[i] != null; i++) result.Add(Utf8(list[i])!);
        return result;
    }
}
