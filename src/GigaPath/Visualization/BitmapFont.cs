using GigaPath.Imaging;

namespace GigaPath.Visualization;

/// <summary>
/// A 5×7 pixel font for the numbers on colour bars (digits, '.', '-', '+', 'E'), drawn straight into an
/// <see cref="RgbImage"/>: the renderer needs no system fonts (the Skia build used has no font manager).
/// </summary>
internal static class BitmapFont
{
    public const int GlyphWidth = 5, GlyphHeight = 7;

    private static readonly Dictionary<char, string[]> Glyphs = new()
    {
        ['0'] = ["01110", "10001", "10011", "10101", "11001", "10001", "01110"],
        ['1'] = ["00100", "01100", "00100", "00100", "00100", "00100", "01110"],
        ['2'] = ["01110", "10001", "00001", "00010", "00100", "01000", "11111"],
        ['3'] = ["11110", "00001", "00001", "01110", "00001", "00001", "11110"],
        ['4'] = ["00010", "00110", "01010", "10010", "11111", "00010", "00010"],
        ['5'] = ["11111", "10000", "11110", "00001", "00001", "10001", "01110"],
        ['6'] = ["00110", "01000", "10000", "11110", "10001", "10001", "01110"],
        ['7'] = ["11111", "00001", "00010", "00100", "01000", "01000", "01000"],
        ['8'] = ["01110", "10001", "10001", "01110", "10001", "10001", "01110"],
        ['9'] = ["01110", "10001", "10001", "01111", "00001", "00010", "01100"],
        ['.'] = ["00000", "00000", "00000", "00000", "00000", "01100", "01100"],
        ['-'] = ["00000", "00000", "00000", "11111", "00000", "00000", "00000"],
        ['+'] = ["00000", "00100", "00100", "11111", "00100", "00100", "00000"],
        ['E'] = ["11111", "10000", "10000", "11110", "10000", "10000", "11111"],
        [' '] = ["00000", "00000", "00000", "00000", "00000", "00000", "00000"],
    };

    /// <summary>Width in pixels of <paramref name="text"/> at <paramref name="scale"/> (one blank column between glyphs).</summary>
    public static int Measure(string text, int scale) => text.Length == 0 ? 0 : (text.Length * (GlyphWidth + 1) - 1) * scale;

    /// <summary>Draws <paramref name="text"/> with its top-left corner at (x, y); characters without a glyph are skipped, pixels outside are clipped.</summary>
    public static void Draw(RgbImage image, string text, int x, int y, int scale, (byte R, byte G, byte B) colour)
    {
        foreach (var ch in text)
        {
            if (Glyphs.TryGetValue(char.ToUpperInvariant(ch), out var rows))
            {
                for (int r = 0; r < GlyphHeight; r++)
                    for (int c = 0; c < GlyphWidth; c++)
                        if (rows[r][c] == '1')
                            Canvas.FillRect(image, x + c * scale, y + r * scale, x + (c + 1) * scale, y + (r + 1) * scale, colour, 1.0);
            }
            x += (GlyphWidth + 1) * scale;
        }
    }
}
