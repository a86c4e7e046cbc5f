namespace GigaPath;

/// <summary>
/// An error the user can act on: bad input, a bad file, a wrong configuration. The message names the file, the tensor
/// or the field. The CLI prints it without a stack trace and exits non-zero.
/// </summary>
public class GigaPathException : Exception
{
    /// <summary>Creates the exception with a message that names the input at fault.</summary>
    public GigaPathException(string message) : base(message) { }
    /// <summary>Creates the exception with a message and the lower-level exception that caused it.</summary>
    public GigaPathException(string message, Exception inner) : base(message, inner) { }

    /// <summary>
    /// The library option or argument the error is about (e.g. <c>TileEmbeddingOptions.MaxAspectRatio</c>), named in
    /// the message; null when the error is not about one. Hosts such as the CLI map it to their own flag.
    /// </summary>
    public string? Option { get; init; }
}

/// <summary>A weight file, tensor file or checkpoint that is malformed or does not match the model.</summary>
public sealed class WeightFormatException : GigaPathException
{
    /// <summary>Creates the exception with a message that names the file and tensor at fault.</summary>
    public WeightFormatException(string message) : base(message) { }
    /// <summary>Creates the exception with a message and the lower-level exception that caused it.</summary>
    public WeightFormatException(string message, Exception inner) : base(message, inner) { }
}
