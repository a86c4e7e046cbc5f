namespace GigaPath;

/// <summary>Bytes or a file that are not a readable image (unknown format, corrupt or truncated data, an unreadable file).</summary>
public sealed class ImageDecodeException : GigaPathException
{
    /// <summary>Creates the exception; <paramref name="message"/> starts with <paramref name="imageName"/>.</summary>
    /// <param name="message">The whole message.</param>
    /// <param name="imageName">The image as its caller named it (a path, a request row, an upload's name).</param>
    /// <param name="inner">The lower-level error, if any.</param>
    public ImageDecodeException(string message, string imageName, Exception? inner = null) : base(message, inner!)
    {
        ImageName = imageName;
    }

    /// <summary>The image as its caller named it (a path, a request row, an upload's name).</summary>
    public string ImageName { get; }
}
