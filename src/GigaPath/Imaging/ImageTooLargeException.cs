namespace GigaPath.Imaging;

/// <summary>
/// An image whose header declares more pixels than allowed, or whose resize to the model's input would be too large
/// (too thin: see <see cref="TilePreprocessor.MaxAspectRatio"/>), refused before the pixel memory is allocated. A
/// distinct type so callers can answer it differently from undecodable bytes (the server: 413 rather than 422).
/// </summary>
public sealed class ImageTooLargeException : BudgetExceededException
{
    /// <summary>Width in pixels the image header declares.</summary>
    public long Width { get; }
    /// <summary>Height in pixels the image header declares.</summary>
    public long Height { get; }

    /// <summary>Creates the exception for an image of <paramref name="width"/> × <paramref name="height"/> pixels.</summary>
    public ImageTooLargeException(string message, long width, long height) : base(message)
    {
        Width = width;
        Height = height;
    }
}
