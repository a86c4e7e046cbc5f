namespace GigaPath.Slides;

/// <summary>
/// Conversions of OpenSlide's pixel format: 32-bit native-endian words 0xAARRGGBB with colour premultiplied by alpha.
/// Transparent pixels occur outside the scanned area (and outside the level's bounds).
/// </summary>
internal static class ArgbPixels
{
    /// <summary>
    /// Composites over white. For premultiplied colour c and alpha a, the straight colour 255c/a blended over white is
    /// 255c/a · a/255 + 255 · (1 − a/255) = c + 255 − a, exact in integers, so no un-premultiplying (and its rounding)
    /// is needed; transparent pixels become white, which tissue detection then treats as background.
    /// </summary>
    public static void CompositeOverWhite(ReadOnlySpan<uint> argb, Span<byte> rgb)
    {
        for (int i = 0, o = 0; i < argb.Length; i++, o += 3)
        {
            uint p = argb[i];
            int a = (int)(p >> 24);
            if (a == 255)
            {
                rgb[o] = (byte)(p >> 16);
                rgb[o + 1] = (byte)(p >> 8);
                rgb[o + 2] = (byte)p;
            }
            else
            {
                int white = 255 - a;
                // Min guards against malformed input with colour above alpha.
                rgb[o] = (byte)Math.Min(255, (int)((p >> 16) & 0xFF) + white);
                rgb[o + 1] = (byte)Math.Min(255, (int)((p >> 8) & 0xFF) + white);
                rgb[o + 2] = (byte)Math.Min(255, (int)(p & 0xFF) + white);
            }
        }
    }

    /// <summary>
    /// Straight (un-premultiplied) RGBA bytes exactly as openslide-python's <c>read_region</c> returns them: colour
    /// 255·c/a truncated, fully transparent pixels all zero. Used to check reads against OpenSlide's reference output.
    /// </summary>
    public static void Unpremultiply(ReadOnlySpan<uint> argb, Span<byte> rgba)
    {
        for (int i = 0, o = 0; i < argb.Length; i++, o += 4)
        {
            uint p = argb[i];
            uint a = p >> 24;
            uint r = (p >> 16) & 0xFF, g = (p >> 8) & 0xFF, b = p & 0xFF;
            if (a != 255 && a != 0)
            {
                r = 255 * r / a;
                g = 255 * g / a;
                b = 255 * b / a;
            }
            rgba[o] = (byte)r;
            rgba[o + 1] = (byte)g;
            rgba[o + 2] = (byte)b;
            rgba[o + 3] = (byte)a;
        }
    }
}
