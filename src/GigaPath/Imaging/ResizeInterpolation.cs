namespace GigaPath.Imaging;

/// <summary>The filter of the resize step of a model's input transform (Pillow's, bit for bit).</summary>
public enum ResizeInterpolation
{
    /// <summary>Pillow BICUBIC (Keys, a = -0.5), antialiased when shrinking.</summary>
    Bicubic,

    /// <summary>Pillow BILINEAR (triangle filter), antialiased when shrinking.</summary>
    Bilinear,
}
