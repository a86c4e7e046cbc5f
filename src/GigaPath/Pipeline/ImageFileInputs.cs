using System.Globalization;
using System.Runtime.ExceptionServices;
using System.Text.RegularExpressions;
using GigaPath.Imaging;
using GigaPath.Models.Tile;
using static TorchSharp.torch;

namespace GigaPath.Pipeline;

/// <summary>
/// Tile images decoded and preprocessed exactly like the reference transform (resize, center crop, normalise with the
/// model's mean/std). Folders are expanded to their image files in ordinal name order.
/// </summary>
public sealed partial class ImageFileInputs : ITileInputs
{
    /// <summary>Extensions picked up when a folder is given (a file named explicitly is decoded whatever its name).</summary>
    public static readonly IReadOnlyList<string> ImageExtensions = [".png", ".jpg", ".jpeg", ".tif", ".tiff"];

    private readonly TilePreprocessor _preprocessor;

    public IReadOnlyList<string> Files { get; }
    public int Count => Files.Count;

    /// <param name="maxAspectRatio">Thinnest image accepted, see <see cref="TilePreprocessor.MaxAspectRatio"/>.</param>
    public ImageFileInputs(IReadOnlyList<string> files, TileEncoderConfig config, double maxAspectRatio = TilePreprocessor.DefaultMaxAspectRatio)
    {
        if (files.Count == 0)
            throw new GigaPathException("no input images");
        Files = files;
        _preprocessor = PreprocessorFor(config).WithMaxAspectRatio(maxAspectRatio);
    }

    /// <summary>The transform Prov-GigaPath applies for <paramref name="config"/>: resize to img/0.875 (256 for 224), crop img.</summary>
    public static TilePreprocessor PreprocessorFor(TileEncoderConfig config)
    {
        var mean = config.Mean.Select(v => (float)v).ToArray();
        var std = config.Std.Select(v => (float)v).ToArray();
        var d = TilePreprocessor.Default;
        if (config.ImgSize == d.CropSize && mean.SequenceEqual(d.Mean) && std.SequenceEqual(d.Std))
            return d;
        return new TilePreprocessor((int)Math.Floor(config.ImgSize / 0.875), config.ImgSize, mean, std);
    }

    /// <summary>Files stay as given; folders become their image files sorted by name (not recursive).</summary>
    public static IReadOnlyList<string> Expand(IEnumerable<string> paths)
    {
        var result = new List<string>();
        foreach (var path in paths)
        {
            if (Directory.Exists(path))
            {
                var images = Directory.EnumerateFiles(path)
                    .Where(f => ImageExtensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
                    .Order(StringComparer.Ordinal)
                    .ToList();
                if (images.Count == 0)
                    throw new GigaPathException($"{path}: folder holds no images ({string.Join(", ", ImageExtensions)})");
                result.AddRange(images);
            }
            else if (File.Exists(path))
            {
                result.Add(path);
            }
            else
            {
                throw new GigaPathException($"{path}: no such file or folder");
            }
        }
        return result;
    }

    /// <summary>
    /// Tile coordinates from file names of the form <c>{x}x_{y}y.ext</c> (e.g. <c>01581x_25327y.png</c> → (1581, 25327)),
    /// as [N, 2] int64 values in input order; null unless every file is named that way.
    /// </summary>
    public static long[]? ParseCoordinates(IReadOnlyList<string> files)
    {
        var coords = new long[files.Count * 2];
        for (int i = 0; i < files.Count; i++)
        {
            var m = CoordinateName().Match(Path.GetFileName(files[i]));
            if (!m.Success
                || !long.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out coords[2 * i])
                || !long.TryParse(m.Groups[2].Value, NumberStyles.None, CultureInfo.InvariantCulture, out coords[2 * i + 1]))
                return null;
        }
        return coords;
    }

    [GeneratedRegex(@"^(\d+)x_(\d+)y\.[A-Za-z]+$")]
    private static partial Regex CoordinateName();

    public Tensor ReadBatch(int start, int count)
    {
        var tiles = new float[count][];
        var errors = new Exception?[count];
        // Decoding and resizing are independent per file; the model then uses all cores for the batch.
        Parallel.For(0, count, i =>
        {
            try
            {
                tiles[i] = _preprocessor.PreprocessFile(Files[start + i]);
            }
            catch (Exception e)
            {
                errors[i] = e;
            }
        });
        // Report the first bad file in input order, as a sequential loop would, not an AggregateException.
        if (errors.FirstOrDefault(e => e is not null) is { } first)
            ExceptionDispatchInfo.Throw(first);
        return _preprocessor.ToBatch(tiles);
    }
}
