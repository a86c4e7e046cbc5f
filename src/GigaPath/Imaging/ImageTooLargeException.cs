namespace GigaPath.Imaging;

/// <summary>
/// An image whose header declares more pixels than allowed, refused before any pixel memory is allocated. A
/// distinct type so callers can answer it differently from undecodable bytes (the server: 413 rather than 422).
/// </summary>
public sealed class ImageTooLargeException : GigaPathException
{
    public long Width { get; }
    public long Height { get; }

    public ImageTooLargeException(string message, long width, long height) : base(message)
    {
        Width = width;
        Height = height;
    }
}
