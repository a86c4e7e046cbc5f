using System.CommandLine;
using GigaPath.Models.Tile;

namespace GigaPath.Cli.Commands;

/// <summary><c>--encoder NAME</c>: the named tile encoder a model folder holds (embed-tiles, run, serve).</summary>
internal static class EncoderArgument
{
    public static Option<string?> Create() => new("--encoder")
    {
        Description = $"The tile encoder the model folder holds: {TileEncoderKind.Names} (TRIDENT's names). " +
            "Fixes what config.json cannot say (the MLP its card passes in code, the embedding recipe); " +
            "not needed when the folder's config.json fits one encoder only",
    };
}
