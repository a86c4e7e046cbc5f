namespace GigaPath.Slides;

/// <summary>Recognises the plain raster images (PNG, JPEG, TIFF) a slide path may name instead of a slide.</summary>
internal static class PlainImages
{
    /// <summary>True when the file starts with a PNG, JPEG or TIFF signature.</summary>
    public static bool IsPlainImage(string path)
    {
        Span<byte> head = stackalloc byte[8];
        int n;
        using (var fs = File.OpenRead(path))
            n = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        head = head[..n];
        return head.StartsWith((ReadOnlySpan<byte>)[0x89, (byte)'P', (byte)'N', (byte)'G'])
            || head.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF])
            || head.StartsWith((ReadOnlySpan<byte>)[(byte)'I', (byte)'I', 42, 0])
            || head.StartsWith((ReadOnlySpan<byte>)[(byte)'M', (byte)'M', 0, 42]);
    }
}
