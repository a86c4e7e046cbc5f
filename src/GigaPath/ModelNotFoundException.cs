namespace GigaPath;

/// <summary>A model folder or weight file that does not exist, or a folder without the config or weights a model needs.</summary>
public sealed class ModelNotFoundException : GigaPathException
{
    /// <summary>Creates the exception; <paramref name="message"/> starts with <paramref name="modelPath"/>.</summary>
    /// <param name="message">The whole message.</param>
    /// <param name="modelPath">The folder or file looked at.</param>
    public ModelNotFoundException(string message, string modelPath) : base(message)
    {
        ModelPath = modelPath;
    }

    /// <summary>The folder or file looked at.</summary>
    public string ModelPath { get; }
}
