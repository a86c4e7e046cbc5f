namespace GigaPath;

/// <summary>
/// A file given as tile features (<c>TileFeatureFile.Read</c>) that is not a readable tile-feature file: neither
/// safetensors, HDF5 nor a PyTorch tensor file, or one of those that is malformed.
/// </summary>
public sealed class FeatureFileFormatException : GigaPathException
{
    /// <summary>Creates the exception; <paramref name="message"/> starts with <paramref name="filePath"/>.</summary>
    /// <param name="message">The whole message.</param>
    /// <param name="filePath">The file as the caller named it.</param>
    /// <param name="inner">The lower-level error, if any.</param>
    public FeatureFileFormatException(string message, string filePath, Exception? inner = null) : base(message, inner!)
    {
        FilePath = filePath;
    }

    /// <summary>The file as the caller named it.</summary>
    public string FilePath { get; }
}
