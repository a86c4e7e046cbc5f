using System.Globalization;
using System.Text.RegularExpressions;
using GigaPath.Imaging;
using GigaPath.Models.Tile;
using static TorchSharp.torch;

namespace GigaPath.Pipeline;

/// <summary>
/// Image files as tile inputs: folders expanded to their image files in ordinal name order, and coordinates from
/// <c>{x}x_{y}y</c> file names. The files themselves are read by <see cref="FileTileSource"/>.
/// </summary>
internal static partial class ImageFileInputs
{
    /// <summary>Extensions picked up when a folder is given (a file named explicitly is decoded whatever its name).</summary>
    public static readonly IReadOnlyList<string> ImageExtensions = [".png", ".jpg", ".jpeg", ".tif", ".tiff"];

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
}
