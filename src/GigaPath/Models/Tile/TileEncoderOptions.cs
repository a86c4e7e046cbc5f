namespace GigaPath.Models.Tile;

/// <summary><see cref="EncoderOptions"/> plus the name of the tile encoder a model folder holds.</summary>
public sealed record TileEncoderOptions : EncoderOptions
{
    /// <summary>
    /// The named encoder to read the folder's config.json as (<see cref="TileEncoderKind.Name"/>: "gigapath",
    /// "hoptimus0", "hoptimus1", "h0-mini", "uni_v1", "uni_v2", "virchow", "virchow2"), or null to use the one encoder
    /// the config fits. A config that does not fit the named encoder is refused naming the field.
    /// </summary>
    public string? Encoder { get; init; }
}
