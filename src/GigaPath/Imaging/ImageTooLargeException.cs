namespace GigaPath.Imaging;

/// <summary>
/// An image whose header declares more pixels than allowed, or whose resize to the model's input would be too large
/// (too thin: see <see cref="TilePreprocessor.MaxAspectRatio"/>), refused before the pixel memory is allocated. A
/// distinct type so callers can answer it differently from undecodable bytes (the server: 413 rather than 422).
/// </summary>
public sealed class ImageTooLargeException : BudgetExceededException
{
    public long Width { get; }
    public long Height { get; }

    public ImageTooLargeException(string message, long width, long height) : base(message)
    {
        Width = width;
        Height = height;
    }
}
