namespace GigaPath;

/// <summary>
/// A model configuration (a tile or slide encoder's config.json, or a config built in code) that is invalid or does
/// not describe a model this engine implements. <see cref="ConfigSource"/> and <see cref="Field"/> say where.
/// </summary>
public sealed class ModelConfigException : GigaPathException
{
    /// <summary>Creates the exception; <paramref name="message"/> names the source and the field.</summary>
    /// <param name="message">The whole message, starting with the source.</param>
    /// <param name="configSource">The config file, or the name of a config built in code.</param>
    /// <param name="field">The JSON field (or C# property) at fault, or null when the whole file is.</param>
    /// <param name="inner">The lower-level error, if any.</param>
    public ModelConfigException(string message, string configSource, string? field = null, Exception? inner = null)
        : base(message, inner!)
    {
        ConfigSource = configSource;
        Field = field;
    }

    /// <summary>The config file, or the name of a config built in code.</summary>
    public string ConfigSource { get; }

    /// <summary>The JSON field (e.g. <c>model_args.reg_tokens</c>) or C# property at fault, or null when the whole file is.</summary>
    public string? Field { get; }
}
