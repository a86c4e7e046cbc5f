namespace GigaPath.Server.Hosting;

/// <summary>The server's names for the library options that library messages name (its flags and query parameters).</summary>
internal static class ServerFlags
{
    private static readonly Dictionary<string, string> Flags = new()
    {
        [OptionNames.MaxAspectRatio] = "the server's --max-aspect-ratio",
        [OptionNames.MaxTiles] = "the server's --max-slide-tiles",
        [OptionNames.Level0TileSize] = "?patch_size_level0=N",
    };

    /// <summary>A library message with the library's option names replaced by the server's.</summary>
    public static string Describe(string message) => OptionNames.ForHost(message, Flags);
}
