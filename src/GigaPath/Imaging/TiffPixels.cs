namespace GigaPath.Imaging;

/// <summary>
/// Reads the first page of an open TIFF into the RGB bytes Pillow 9.4's <c>convert("RGB")</c> gives: unassociated
/// alpha dropped untouched, associated alpha un-premultiplied with Pillow's integer formula, grey replicated,
/// palettes expanded (16-bit entries keep the high byte), 16-bit colour reduced to the high byte, 16-bit grey saturated
/// at 255, and the Orientation tag applied (Pillow transposes TIFFs on load). Everything 8-bit and bilevel goes
/// through libtiff's RGBA interface, which covers every compression libtiff decodes. Exact 16-bit handling covers grey
/// and RGB(A) in strips; tiled or planar 16-bit images fall back to the RGBA interface, which rounds 16 → 8 bits
/// where Pillow keeps the high byte (off by at most one).
/// </summary>
internal static unsafe class TiffPixels
{
    private const uint TagImageWidth = 256;
    private const uint TagImageLength = 257;
    private const uint TagBitsPerSample = 258;
    private const uint TagPhotometric = 262;
    private const uint TagOrientation = 274;
    private const uint TagSamplesPerPixel = 277;
    private const uint TagPlanarConfig = 284;
    private const uint TagExtraSamples = 338;
    private const uint TagSampleFormat = 339;
    private const ushort PhotometricMinIsBlack = 1;
    private const ushort PhotometricRgb = 2;
    private const ushort ExtraSampleUnspecified = 0;
    private const ushort ExtraSampleAssociatedAlpha = 1;
    private const ushort ExtraSampleUnassociatedAlpha = 2;

    public static RgbImage Read(LibTiff lib, IntPtr tif, string sourceName, long maxPixels, Func<string> libtiffErrors, Action<int, int>? onSize = null)
    {
        uint width, height;
        if (lib.GetField1(tif, TagImageWidth, &width) == 0 || lib.GetField1(tif, TagImageLength, &height) == 0
            || width == 0 || height == 0 || width > int.MaxValue || height > int.MaxValue)
            throw new GigaPathException($"{sourceName}: the TIFF has no valid image size{libtiffErrors()}");
        ImageDecoder.CheckPixelLimit(sourceName, (int)width, (int)height, maxPixels, onSize);
        if ((long)width * height > Array.MaxLength / 3)
            throw new GigaPathException($"{sourceName}: a {width}x{height} TIFF is too large to decode in one piece");

        ushort bits, samplesPerPixel, planar, sampleFormat, photometric, orientation;
        lib.GetFieldDefaulted1(tif, TagBitsPerSample, &bits);
        lib.GetFieldDefaulted1(tif, TagSamplesPerPixel, &samplesPerPixel);
        lib.GetFieldDefaulted1(tif, TagPlanarConfig, &planar);
        lib.GetFieldDefaulted1(tif, TagSampleFormat, &sampleFormat);
        if (lib.GetField1(tif, TagPhotometric, &photometric) == 0) photometric = ushort.MaxValue;
        if (lib.GetField1(tif, TagOrientation, &orientation) == 0 || orientation is < 1 or > 8) orientation = 1;

        ushort extraCount;
        ushort* extraKinds;
        int alphaKind = lib.GetField2(tif, TagExtraSamples, &extraCount, &extraKinds) != 0 && extraCount > 0
            ? extraKinds[0]
            : -1;
        // Pillow un-premultiplies associated alpha only in its RGB modes ("RGBa" raw modes).
        bool unpremultiply = alphaKind == ExtraSampleAssociatedAlpha && photometric == PhotometricRgb && samplesPerPixel >= 4;

        bool raw16 = bits == 16 && planar == 1 && sampleFormat == 1 && lib.IsTiled(tif) == 0
            && ((photometric == PhotometricMinIsBlack && samplesPerPixel == 1)
                || (photometric == PhotometricRgb && samplesPerPixel is 3 or 4));
        var image = raw16
            ? ReadSamples16(lib, tif, (int)width, (int)height, samplesPerPixel, unpremultiply, sourceName, libtiffErrors)
            : ReadRgba(lib, tif, width, height, orientation, alphaKind, unpremultiply, sourceName, libtiffErrors);
        return TiffOrientation.Apply(image, orientation);
    }

    private static RgbImage ReadRgba(LibTiff lib, IntPtr tif, uint width, uint height, ushort orientation, int alphaKind,
        bool unpremultiply, string sourceName, Func<string> libtiffErrors)
    {
        // libtiff premultiplies unassociated alpha, Pillow drops it untouched: relabelling the extra samples as
        // unspecified makes libtiff pass the colour samples through unchanged (associated alpha passes through as is).
        if (alphaKind == ExtraSampleUnassociatedAlpha)
        {
            ushort count;
            ushort* kinds;
            lib.GetField2(tif, TagExtraSamples, &count, &kinds);
            var unspecified = stackalloc ushort[count];
            for (int i = 0; i < count; i++) unspecified[i] = ExtraSampleUnspecified;
            if (lib.SetFieldCountArray(tif, TagExtraSamples, count, unspecified) == 0)
                throw new GigaPathException($"{sourceName}: cannot read the TIFF's alpha layout{libtiffErrors()}");
        }

        var raster = new uint[(long)width * height];
        int ok;
        // Requesting the file's own orientation stops libtiff from flipping; TiffOrientation then does all 8 cases.
        fixed (uint* r = raster)
            ok = lib.ReadRgbaImageOriented(tif, width, height, r, orientation, 1);
        if (ok == 0)
            throw new GigaPathException($"{sourceName}: cannot decode the TIFF image (truncated or corrupt, or an unsupported layout){libtiffErrors()}");

        var rgb = new byte[raster.LongLength * 3];
        for (long i = 0, p = 0; i < raster.LongLength; i++, p += 3)
        {
            uint v = raster[i];
            byte r = (byte)v, g = (byte)(v >> 8), b = (byte)(v >> 16);
            if (unpremultiply)
            {
                int a = (int)(v >> 24);
                (r, g, b) = (Unpremultiply(r, a), Unpremultiply(g, a), Unpremultiply(b, a));
            }
            (rgb[p], rgb[p + 1], rgb[p + 2]) = (r, g, b);
        }
        return new RgbImage((int)width, (int)height, rgb);
    }

    /// <summary>
    /// 16-bit samples as Pillow converts them: grey opens as "I;16" and saturates at 255 in the conversion to RGB,
    /// colour keeps the high byte. libtiff's RGBA interface would rescale instead, so the samples are read raw
    /// (libtiff has already decompressed them and put them in native byte order).
    /// </summary>
    private static RgbImage ReadSamples16(LibTiff lib, IntPtr tif, int width, int height, int samplesPerPixel,
        bool unpremultiply, string sourceName, Func<string> libtiffErrors)
    {
        long lineBytes = lib.ScanlineSize64(tif);
        if (lineBytes != (long)width * samplesPerPixel * 2)
            throw new GigaPathException($"{sourceName}: unexpected TIFF scanline size {lineBytes} for {width} pixels of {samplesPerPixel} 16-bit samples{libtiffErrors()}");
        var line = new ushort[width * samplesPerPixel];
        var rgb = new byte[(long)width * height * 3];
        for (int y = 0; y < height; y++)
        {
            int ok;
            fixed (ushort* l = line)
                ok = lib.ReadScanline(tif, l, (uint)y, 0);
            if (ok != 1)
                throw new GigaPathException($"{sourceName}: cannot decode row {y} of the TIFF image (truncated or corrupt){libtiffErrors()}");
            long p = (long)y * width * 3;
            for (int x = 0; x < width; x++, p += 3)
            {
                int s = x * samplesPerPixel;
                if (samplesPerPixel == 1)
                {
                    rgb[p] = rgb[p + 1] = rgb[p + 2] = (byte)Math.Min((int)line[s], 255);
                    continue;
                }
                byte r = (byte)(line[s] >> 8), g = (byte)(line[s + 1] >> 8), b = (byte)(line[s + 2] >> 8);
                if (unpremultiply)
                {
                    int a = line[s + 3] >> 8;
                    (r, g, b) = (Unpremultiply(r, a), Unpremultiply(g, a), Unpremultiply(b, a));
                }
                (rgb[p], rgb[p + 1], rgb[p + 2]) = (r, g, b);
            }
        }
        return new RgbImage(width, height, rgb);
    }

    // Pillow's unpackRGBa: black where alpha is 0, integer division otherwise, clipped to 255.
    private static byte Unpremultiply(byte c, int a) =>
        a == 0 ? (byte)0 : a == 255 ? c : (byte)Math.Min(c * 255 / a, 255);
}
