using GigaPath.IO;
using GigaPath.Slides;
using GigaPath.Models.Slide;

namespace GigaPath.Pipeline;

/// <summary>One slide of a cohort: its id (names the outputs), its file, and its level-0 MPP when the caller gives it.</summary>
/// <param name="SlideId">Names the slide's outputs: a plain file name (no slashes, no leading dot).</param>
/// <param name="Path">The slide file.</param>
/// <param name="SlideMpp">Micrometres per level-0 pixel, overriding the file's metadata; null to use the metadata
/// (or <see cref="TilingOptions.SlideMpp"/>).</param>
public sealed record SlideJob(string SlideId, string Path, double? SlideMpp = null);

/// <summary>How a cohort's slides are turned into embeddings (see <see cref="CohortRunner"/>).</summary>
public sealed record PipelineOptions
{
    /// <summary>Tile size, resolution, tissue rule; <see cref="TilingOptions.SlideMpp"/> applies to slides whose job
    /// gives none.</summary>
    public TilingOptions Tiling { get; init; } = new();

    /// <summary>Tiles per tile-encoder forward pass (results do not depend on it beyond float rounding).</summary>
    public int BatchSize { get; init; } = 16;

    /// <summary>Reader tasks reading and preprocessing tiles while the encoder runs.</summary>
    public int Readers { get; init; } = 4;

    /// <summary>Batches the readers may prepare ahead of the encoder (bounds memory).</summary>
    public int QueueBatches { get; init; } = 2;

    /// <summary>Which slide embedding is written (mean of the tokens, as the authors advise, or the class token).</summary>
    public SlidePooling Pooling { get; init; } = SlidePooling.Mean;

    /// <summary>Also write every layer's slide embedding (<c>layer_0</c> … <c>layer_K</c>).</summary>
    public bool AllLayers { get; init; }

    /// <summary>Write each tile as <c>&lt;id&gt;.tiles/{x:05d}x_{y:05d}y.png</c> (level-0 x, y), like the reference tiler.</summary>
    public bool SaveTiles { get; init; }

    /// <summary>Embed only the first N planned tiles (row-major): for quick measurements, not for results.</summary>
    public int? MaxTiles { get; init; }

    /// <summary>Longest side of the thumbnail PNG.</summary>
    public int ThumbnailSize { get; init; } = 1024;

    internal void Validate()
    {
        if (BatchSize < 1) throw new GigaPathException($"{OptionNames.BatchSize} must be at least 1, got {BatchSize}");
        if (Readers < 1) throw new GigaPathException($"{OptionNames.Readers} must be at least 1, got {Readers}");
        if (QueueBatches < 1) throw new GigaPathException($"the read-ahead queue must hold at least 1 batch, got {QueueBatches}");
        if (MaxTiles is < 1) throw new GigaPathException($"{OptionNames.PipelineMaxTiles} must be at least 1, got {MaxTiles}");
        if (ThumbnailSize < 16) throw new GigaPathException($"thumbnail size must be at least 16 pixels, got {ThumbnailSize}");
    }
}
