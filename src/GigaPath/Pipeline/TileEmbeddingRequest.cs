using GigaPath.Models.Tile;

namespace GigaPath.Pipeline;

/// <summary>One <c>embed-tiles</c> run: a model, tiles (image files/folders or a pixel file) and an output file.</summary>
public sealed record TileEmbeddingRequest
{
    public required string ModelDir { get; init; }
    public required string OutputPath { get; init; }

    /// <summary>Image files and folders (expanded to their images in name order).</summary>
    public IReadOnlyList<string> Images { get; init; } = [];

    /// <summary>A safetensors file holding <c>pixel_values</c> [N, 3, 224, 224] float32, instead of images.</summary>
    public string? PixelFile { get; init; }

    /// <summary>Thinnest image accepted (longest over shortest side), see <see cref="Imaging.TilePreprocessor.MaxAspectRatio"/>.</summary>
    public double MaxAspectRatio { get; init; } = Imaging.TilePreprocessor.DefaultMaxAspectRatio;

    public int BatchSize { get; init; } = 16;
    public bool Tokens { get; init; }
    public TileEncoderOptions Encoder { get; init; } = new();
}

/// <summary>What a <see cref="TileEmbeddingRequest"/> produced.</summary>
public sealed record TileEmbeddingSummary(string OutputPath, long Tiles, long Dim, bool HasCoords, bool HasTokens, TimeSpan Elapsed);
