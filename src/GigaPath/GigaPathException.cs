namespace GigaPath;

/// <summary>
/// An error the user can act on: bad input, a bad file, a wrong configuration. The message names the file, the tensor
/// or the field. The CLI prints it without a stack trace and exits non-zero.
/// </summary>
public class GigaPathException : Exception
{
    public GigaPathException(string message) : base(message) { }
    public GigaPathException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>A weight file, tensor file or checkpoint that is malformed or does not match the model.</summary>
public sealed class WeightFormatException : GigaPathException
{
    public WeightFormatException(string message) : base(message) { }
    public WeightFormatException(string message, Exception inner) : base(message, inner) { }
}
