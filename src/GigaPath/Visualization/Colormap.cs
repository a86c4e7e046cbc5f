namespace GigaPath.Visualization;

/// <summary>Colours for scalar maps.</summary>
internal static class Colormap
{
    // Five evenly spaced stops of matplotlib's perceptually uniform "viridis" (dark purple → blue → green → yellow);
    // linear interpolation between them is within a few levels of the full table.
    private static readonly (double R, double G, double B)[] ViridisStops =
    [
        (0x44, 0x01, 0x54), (0x3B, 0x52, 0x8B), (0x21, 0x91, 0x8C), (0x5E, 0xC9, 0x62), (0xFD, 0xE7, 0x25),
    ];

    /// <summary>Viridis colour of <paramref name="t"/> in [0, 1] (clamped).</summary>
    public static (byte R, byte G, byte B) Viridis(double t)
    {
        if (double.IsNaN(t)) t = 0;
        t = Math.Clamp(t, 0, 1) * (ViridisStops.Length - 1);
        int i = Math.Min((int)t, ViridisStops.Length - 2);
        double f = t - i;
        var (a, b) = (ViridisStops[i], ViridisStops[i + 1]);
        return (Byte(a.R + (b.R - a.R) * f), Byte(a.G + (b.G - a.G) * f), Byte(a.B + (b.B - a.B) * f));
    }

    /// <summary>A [0, 1] value as an 8-bit channel, rounded.</summary>
    public static byte Channel(double unit) => Byte(Math.Clamp(unit, 0, 1) * 255);

    private static byte Byte(double v) => (byte)Math.Clamp(Math.Round(v), 0, 255);
}
