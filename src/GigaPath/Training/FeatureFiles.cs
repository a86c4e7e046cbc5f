using GigaPath.Models.Slide;
using GigaPath.IO;
using GigaPath.Weights;

namespace GigaPath.Training;

/// <summary>Shape facts of one feature file, read from its header without loading the data.</summary>
internal sealed record FeatureFileInfo(string Path, int Count, int Dim, int? SlideEmbeddingDim, int? ContextualDim = null);

/// <summary>
/// Finds and reads per-slide feature files as the pipeline writes them (<see cref="TileFeatureFile"/>):
/// <c>&lt;slide_id&gt;.safetensors</c> (tile features [N, D] under <c>features</c>, <c>tile_embeddings</c> or
/// <c>embeddings</c>, <c>coords</c> [N, 2]) or <c>&lt;slide_id&gt;.h5</c> (CLAM/TRIDENT <c>features</c>, <c>coords</c>) or CLAM's <c>&lt;slide_id&gt;.pt</c> (features only).
/// The slide embedding the linear probe prefers is a <c>slide_embedding</c> tensor ([D] or [1, D]) in the feature file
/// itself or in the pipeline's <c>&lt;slide_id&gt;.slide.safetensors</c> next to it.
/// </summary>
internal static class FeatureFiles
{
    public static readonly string[] Extensions = [".safetensors", ".h5", ".pt"];
    public const string SlideEmbeddingKey = "slide_embedding";

    /// <summary>The slide encoder's grid step (tile_size) that <see cref="SlideBag.EncoderCoords"/> are expressed in.</summary>
    public const int ReferenceTileSize = 256;

    /// <summary>The slide encoder's per-tile outputs [N, D] as <c>embed-slide</c> and <c>run</c> write them.</summary>
    public const string ContextualKey = IO.SlideEmbeddingFile.ContextualTileEmbeddings;

    /// <summary>Files the pipeline and <c>predict</c> write next to feature files, which are not feature files themselves.</summary>
    private static readonly string[] CompanionSuffixes = [".slide.safetensors", ".attention.safetensors"];

    /// <summary>The pipeline's slide-embedding file that belongs to a feature file.</summary>
    public static string SlideFileFor(string featurePath) =>
        System.IO.Path.Combine(System.IO.Path.GetDirectoryName(featurePath) ?? ".", SlideIdOf(featurePath) + ".slide.safetensors");

    /// <summary>
    /// The feature file of <paramref name="slideId"/> in <paramref name="directory"/>, or null when there is none. The
    /// id is a name, never a path: one with a separator or a dot-dot is refused, so no id reaches outside the folder.
    /// </summary>
    public static string? Find(string directory, string slideId)
    {
        if (NotAName(slideId) is { } problem)
            throw new GigaPathException($"slide id '{slideId}' {problem}; slide ids are file names inside the features folder {directory}, not paths");
        return Extensions.Select(e => System.IO.Path.Combine(directory, slideId + e)).FirstOrDefault(File.Exists);
    }

    /// <summary>Why <paramref name="slideId"/> cannot be a feature file's name (a path, "." or "..", a bad character), or null.</summary>
    internal static string? NotAName(string slideId)
    {
        if (slideId.IndexOfAny(['/', '\\']) >= 0) return "contains a path separator";
        if (slideId is "." or "..") return "is a relative path";
        if (slideId.IndexOfAny(System.IO.Path.GetInvalidFileNameChars()) >= 0) return "contains a character not allowed in file names";
        return null;
    }

    /// <summary>Paths the slide's file was looked for at, for the "file listed but absent" error.</summary>
    public static string ExpectedPaths(string directory, string slideId) =>
        string.Join(" or ", Extensions.Select(e => System.IO.Path.Combine(directory, slideId + e)));

    /// <summary>Every feature file in a folder (sorted by name), or the file itself.</summary>
    public static IEnumerable<string> Expand(string path)
    {
        if (File.Exists(path)) return [path];
        if (!Directory.Exists(path)) throw new GigaPathException($"{path}: no such feature file or folder");
        return Directory.EnumerateFiles(path)
            .Where(f => Extensions.Any(e => f.EndsWith(e, StringComparison.OrdinalIgnoreCase)))
            .Where(f => !CompanionSuffixes.Any(c => f.EndsWith(c, StringComparison.OrdinalIgnoreCase)))
            .Order(StringComparer.Ordinal);
    }

    /// <summary>A feature file's tile count and widths from its declared shapes (no data read); a slide without tiles is refused.</summary>
    public static FeatureFileInfo Probe(string path)
    {
        var info = ProbeShapes(path);
        if (info.Count == 0) throw TileFeatures.NoTiles(path, info.Dim);
        return info;
    }

    private static FeatureFileInfo ProbeShapes(string path)
    {
        if (!File.Exists(path)) throw new GigaPathException($"{path}: feature file not found");
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
        {
            using var file = SafeTensorsFile.Open(path);
            var name = TileFeatureFile.FeatureNames.FirstOrDefault(file.Contains)
                ?? throw new GigaPathException($"{path}: no tile features (expected a tensor named {string.Join(", ", TileFeatureFile.FeatureNames)}; file has: {string.Join(", ", file.Names.Take(12))})");
            var (count, dim) = TileFeatureFile.Matrix(path, name, file.GetInfo(name).Shape, null);
            if (file.Contains("coords"))
            {
                var (n, _) = TileFeatureFile.Matrix(path, "coords", file.GetInfo("coords").Shape, 2);
                if (n != count) throw new GigaPathException($"{path}: '{name}' holds {count} tiles but 'coords' holds {n}");
            }
            return new FeatureFileInfo(path, count, dim, file.Contains(SlideEmbeddingKey) ? SlideEmbeddingWidth(file) : CompanionWidth(path),
                file.Contains(ContextualKey) ? ContextualWidth(file, count) : CompanionContextualWidth(path, count));
        }
        if (path.EndsWith(".pt", StringComparison.OrdinalIgnoreCase))
        {
            // The pickle's declared shape: the data is read (and held to the budget) only when the slide is.
            var (count, dim) = TileFeatureFile.Matrix(path, "tensor", TorchSaveReader.DeclaredShape(File.OpenRead(path), path), null);
            return new FeatureFileInfo(path, count, dim, CompanionWidth(path), CompanionContextualWidth(path, count));
        }
        try
        {
            using var h5 = TileFeatureH5.Open(path);
            if (!h5.Sets.TryGetValue("features", out var features)) throw new GigaPathException($"{path}: no 'features' dataset");
            var (count, dim) = TileFeatureFile.Matrix(path, "features", features.Dims, null);
            return new FeatureFileInfo(path, count, dim, CompanionWidth(path), CompanionContextualWidth(path, count));
        }
        catch (Exception e) when (e is not GigaPathException)
        {
            throw new GigaPathException($"{path}: not a readable HDF5 feature file ({e.Message})", e);
        }
    }

    /// <summary>
    /// Reads one slide's bag. The slide encoder's positions (<see cref="SlideBag.EncoderCoords"/>) come from the file's
    /// own metadata (<see cref="TilePositions"/>), else <paramref name="level0TileSize"/>; when neither says, the bag
    /// carries the reason instead (<see cref="SlideBag.PositionsError"/>), since heads other than the slide encoder do
    /// not need positions.
    /// </summary>
    public static SlideBag Read(string path, string? slideId = null, double? level0TileSize = null)
    {
        var tiles = TileFeatureFile.Read(path).RequireUsable();
        float[]? slide = null;
        if (path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            slide = ReadSlideEmbedding(path);
        if (slide is null && File.Exists(SlideFileFor(path)))
            slide = ReadSlideEmbedding(SlideFileFor(path));
        var coords = tiles.Coords?.Select(v => (float)v).ToArray();
        var contextualSource = new[] { path, SlideFileFor(path) }.FirstOrDefault(p =>
            p.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) && File.Exists(p) && HasTensor(p, ContextualKey));
        float[]? contextual = null;
        int contextualDim = 0;
        if (contextualSource is not null)
        {
            using var file = SafeTensorsFile.Open(contextualSource);
            contextualDim = ContextualWidth(file, tiles.Count);
            contextual = file.ReadFloats(ContextualKey).Data;
        }
        ResolvedPositions? positions = null;
        string? positionsError = null;
        try
        {
            // Prov-GigaPath's slide encoder lays its grid in 256-pixel steps (tile_size in every published config).
            positions = TilePositions.Resolve(tiles, ReferenceTileSize, level0TileSize);
        }
        catch (GigaPathException e)
        {
            positionsError = e.Message;
        }
        return new SlideBag(slideId ?? SlideIdOf(path), path, tiles.Features, tiles.Count, tiles.Dim, coords, slide)
        {
            EncoderCoords = positions?.TilingCoords.Select(v => (float)v).ToArray(),
            Positions = positions?.Rule,
            PositionsError = positionsError,
            Contextual = contextual,
            ContextualDim = contextualDim,
        };
    }

    /// <summary>The slide id a feature file stands for: its file name without the extension.</summary>
    public static string SlideIdOf(string path)
    {
        var name = System.IO.Path.GetFileName(path);
        foreach (var ext in Extensions)
            if (name.EndsWith(ext, StringComparison.OrdinalIgnoreCase))
                return name[..^ext.Length];
        return System.IO.Path.GetFileNameWithoutExtension(name);
    }

    private static float[]? ReadSlideEmbedding(string path)
    {
        using var file = SafeTensorsFile.Open(path);
        if (!file.Contains(SlideEmbeddingKey)) return null;
        SlideEmbeddingWidth(file);
        return file.ReadFloats(SlideEmbeddingKey).Data;
    }

    private static bool HasTensor(string path, string name)
    {
        using var file = SafeTensorsFile.Open(path);
        return file.Contains(name);
    }

    private static int ContextualWidth(SafeTensorsFile file, int count)
    {
        var (n, dim) = TileFeatureFile.Matrix(file.Path, ContextualKey, file.GetInfo(ContextualKey).Shape, null);
        if (n != count)
            throw new GigaPathException($"{file.Path}: '{ContextualKey}' holds {n} tiles but the tile features hold {count}");
        return dim;
    }

    private static int? CompanionContextualWidth(string featurePath, int count)
    {
        var companion = SlideFileFor(featurePath);
        if (!File.Exists(companion)) return null;
        using var file = SafeTensorsFile.Open(companion);
        return file.Contains(ContextualKey) ? ContextualWidth(file, count) : null;
    }

    private static int? CompanionWidth(string featurePath)
    {
        var companion = SlideFileFor(featurePath);
        if (!File.Exists(companion)) return null;
        using var file = SafeTensorsFile.Open(companion);
        return file.Contains(SlideEmbeddingKey) ? SlideEmbeddingWidth(file) : null;
    }

    private static int SlideEmbeddingWidth(SafeTensorsFile file)
    {
        var shape = file.GetInfo(SlideEmbeddingKey).Shape;
        if (shape.Length == 1) return checked((int)shape[0]);
        if (shape.Length == 2 && shape[0] == 1) return checked((int)shape[1]);
        throw new GigaPathException($"{file.Path}: tensor '{SlideEmbeddingKey}' must be [D] or [1, D], got [{string.Join(", ", shape)}]");
    }
}
