using GigaPath.Models;

namespace GigaPath.Pipeline;

/// <summary>
/// One tile-embedding run (see <see cref="TileEmbedding.Execute"/>): a tile encoder, tiles (image files and folders, or
/// a file of preprocessed pixels) and the safetensors file to write.
/// </summary>
public sealed record TileEmbeddingRequest
{
    /// <summary>The tile encoder's folder (config.json and weights).</summary>
    public required string ModelDirectory { get; init; }

    /// <summary>The <c>.safetensors</c> file to write.</summary>
    public required string OutputPath { get; init; }

    /// <summary>Image files and folders (expanded to their images in name order); empty when <see cref="PixelFile"/> is given.</summary>
    public IReadOnlyList<string> Images { get; init; } = [];

    /// <summary>A safetensors file holding <c>pixel_values</c> [N, 3, S, S] float32 (S the model's input size), instead of images.</summary>
    public string? PixelFile { get; init; }

    /// <summary>Thinnest image accepted (longest over shortest side), see <see cref="Imaging.TilePreprocessor.MaxAspectRatio"/>.</summary>
    public double MaxAspectRatio { get; init; } = Imaging.TilePreprocessor.DefaultMaxAspectRatio;

    /// <summary>Tiles per forward pass (results do not depend on it).</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>Also write every tile's final-norm tokens (<c>tokens</c> [N, T, D]).</summary>
    public bool IncludeTokens { get; init; }

    /// <summary>Device, dtype and encoder name the model is loaded with.</summary>
    public EncoderOptions EncoderOptions { get; init; } = new();
}

/// <summary>What a <see cref="TileEmbeddingRequest"/> produced.</summary>
public sealed class TileEmbeddingSummary
{
    internal TileEmbeddingSummary(string outputPath, int tileCount, int dimension, bool hasCoordinates, bool hasTokens, TimeSpan elapsed)
    {
        OutputPath = outputPath;
        TileCount = tileCount;
        Dimension = dimension;
        HasCoordinates = hasCoordinates;
        HasTokens = hasTokens;
        Elapsed = elapsed;
    }

    /// <summary>The file written.</summary>
    public string OutputPath { get; }

    /// <summary>Tiles embedded.</summary>
    public int TileCount { get; }

    /// <summary>Width of each embedding.</summary>
    public int Dimension { get; }

    /// <summary>Whether the file holds <c>coords</c> (from image names of the form <c>{x}x_{y}y.png</c>).</summary>
    public bool HasCoordinates { get; }

    /// <summary>Whether the file holds <c>tokens</c>.</summary>
    public bool HasTokens { get; }

    /// <summary>Time taken, model loading included.</summary>
    public TimeSpan Elapsed { get; }
}
