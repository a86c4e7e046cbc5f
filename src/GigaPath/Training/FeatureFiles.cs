using GigaPath.Weights;

namespace GigaPath.Training;

/// <summary>Shape facts of one feature file, read from its header without loading the data.</summary>
public sealed record FeatureFileInfo(string Path, int Count, int Dim, int? SlideEmbeddingDim);

/// <summary>
/// Finds and reads per-slide feature files as the pipeline writes them: <c>&lt;slide_id&gt;.safetensors</c> with
/// <c>embeddings</c> [N, D] (or <c>features</c>), <c>coords</c> [N, 2] and optionally <c>slide_embedding</c> [D] or [1, D].
/// </summary>
public static class FeatureFiles
{
    public static readonly string[] Extensions = [".safetensors"];
    private static readonly string[] FeatureKeys = ["embeddings", "features"];
    public const string SlideEmbeddingKey = "slide_embedding";

    /// <summary>The feature file of <paramref name="slideId"/> in <paramref name="directory"/>, or null when there is none.</summary>
    public static string? Find(string directory, string slideId)
    {
        foreach (var ext in Extensions)
        {
            var p = System.IO.Path.Combine(directory, slideId + ext);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>Paths the slide's file was looked for at, for the "file listed but absent" error.</summary>
    public static string ExpectedPaths(string directory, string slideId) =>
        string.Join(" or ", Extensions.Select(e => System.IO.Path.Combine(directory, slideId + e)));

    public static FeatureFileInfo Probe(string path)
    {
        using var file = Open(path);
        var (_, count, dim) = FeatureTensor(file);
        CheckCoords(file, count);
        int? embDim = file.Contains(SlideEmbeddingKey) ? SlideEmbeddingWidth(file) : null;
        return new FeatureFileInfo(path, count, dim, embDim);
    }

    public static SlideBag Read(string path, string? slideId = null)
    {
        using var file = Open(path);
        var (key, count, dim) = FeatureTensor(file);
        CheckCoords(file, count);
        var (features, _) = file.ReadFloats(key);
        var (coords, _) = file.ReadFloats("coords");
        float[]? slide = null;
        if (file.Contains(SlideEmbeddingKey))
        {
            SlideEmbeddingWidth(file);
            slide = file.ReadFloats(SlideEmbeddingKey).Data;
        }
        for (long i = 0; i < features.LongLength; i++)
            if (!float.IsFinite(features[i]))
                throw new GigaPathException($"{path}: tensor '{key}' holds a non-finite value at tile {i / dim}");
        return new SlideBag(slideId ?? SlideIdOf(path), path, features, count, dim, coords, slide);
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

    private static SafeTensorsFile Open(string path)
    {
        if (!File.Exists(path)) throw new GigaPathException($"{path}: feature file not found");
        if (!path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            throw new GigaPathException($"{path}: unsupported feature file (expected .safetensors)");
        return SafeTensorsFile.Open(path);
    }

    private static (string Key, int Count, int Dim) FeatureTensor(SafeTensorsFile file)
    {
        var key = FeatureKeys.FirstOrDefault(file.Contains)
            ?? throw new GigaPathException($"{file.Path}: no tile feature tensor (expected one of: {string.Join(", ", FeatureKeys)}; found: {string.Join(", ", file.Names)})");
        var shape = file.Info(key).Shape;
        if (shape.Length != 2 || shape[0] < 1 || shape[1] < 1)
            throw new GigaPathException($"{file.Path}: tensor '{key}' must be [N, D] with N, D >= 1, got [{string.Join(", ", shape)}]");
        return (key, checked((int)shape[0]), checked((int)shape[1]));
    }

    private static void CheckCoords(SafeTensorsFile file, int count)
    {
        if (!file.Contains("coords"))
            throw new GigaPathException($"{file.Path}: no 'coords' tensor");
        var shape = file.Info("coords").Shape;
        if (shape.Length != 2 || shape[0] != count || shape[1] != 2)
            throw new GigaPathException($"{file.Path}: tensor 'coords' must be [{count}, 2] to match the features, got [{string.Join(", ", shape)}]");
    }

    private static int SlideEmbeddingWidth(SafeTensorsFile file)
    {
        var shape = file.Info(SlideEmbeddingKey).Shape;
        if (shape.Length == 1) return checked((int)shape[0]);
        if (shape.Length == 2 && shape[0] == 1) return checked((int)shape[1]);
        throw new GigaPathException($"{file.Path}: tensor '{SlideEmbeddingKey}' must be [D] or [1, D], got [{string.Join(", ", shape)}]");
    }
}
