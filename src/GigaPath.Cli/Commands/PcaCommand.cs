using System.CommandLine;
using System.Globalization;
using GigaPath.Imaging;
using GigaPath.IO;
using GigaPath.Visualization;

namespace GigaPath.Cli.Commands;

/// <summary>
/// <c>gigapath pca</c>: a slide map from tile features (first three principal components as RGB, or one component as a
/// heatmap) or from any per-tile value (e.g. attention from <c>predict</c>), over the slide thumbnail or on white.
/// </summary>
public sealed class PcaCommand : ICliCommand
{
    public Command Build()
    {
        var features = new Option<string?>("--features") { Description = "Tile-feature file (.safetensors or .h5 with coords)" };
        var output = new Option<string>("--out") { Description = "Output PNG", Required = true };
        var thumbnail = new Option<string?>("--thumbnail") { Description = "Image of the whole slide to draw over (scaled to fit)" };
        var tileSize = new Option<double?>("--tile-size") { Description = "Tile side in the coordinates' pixel units (default: patch_size_level0 attribute, else the coordinate grid step)" };
        var slideSize = new Option<string?>("--slide-size") { Description = "Level-0 slide size WxH that the thumbnail shows (default: level0_dim attribute, else estimated)" };
        var component = new Option<int?>("--component") { Description = "Draw principal component k (1-based) as a heatmap instead of RGB" };
        var scalar = new Option<string?>("--scalar") { Description = "Per-tile values to draw as a heatmap: CSV with x,y,<value> or safetensors with coords + values (e.g. predict's attention)" };
        var scalarColumn = new Option<string?>("--scalar-column") { Description = "Column/tensor of --scalar to draw (default attention, else the last column / only 1-D tensor)" };
        var rank = new Option<bool>("--rank") { Description = "Draw the values' rank fractions instead of the values (for skewed scores)" };
        var tilePixels = new Option<int>("--tile-pixels") { Description = "Tile side in output pixels without a thumbnail", DefaultValueFactory = _ => 8 };
        var alpha = new Option<double?>("--alpha") { Description = "Opacity of the tile colours (default 1 on white, 0.6 over a thumbnail)" };

        var cmd = new Command("pca", "Draw tile features (PCA → RGB, or one component) or per-tile values as a slide map PNG.");
        foreach (var o in new Option[] { features, output, thumbnail, tileSize, slideSize, component, scalar, scalarColumn, rank, tilePixels, alpha })
            cmd.Options.Add(o);
        cmd.SetAction(parse => CliRunner.Run(() =>
        {
            var featurePath = parse.GetValue(features);
            var scalarPath = parse.GetValue(scalar);
            if (featurePath is null && scalarPath is null) throw new GigaPathException("give --features, --scalar or both");
            if (scalarPath is not null && parse.GetValue(component) is not null) throw new GigaPathException("--component and --scalar draw different maps; give one");
            if (parse.GetValue(alpha) is double a && a is < 0 or > 1) throw new GigaPathException($"--alpha must lie in [0, 1], got {a}");
            if (parse.GetValue(tilePixels) < 1) throw new GigaPathException("--tile-pixels must be 1 or more");

            var options = new SlideMapOptions
            {
                TileSize = parse.GetValue(tileSize),
                Thumbnail = parse.GetValue(thumbnail) is { } t ? ImageDecoder.DecodeFile(t) : null,
                SlideSize = parse.GetValue(slideSize) is { } s ? ParseSize(s) : null,
                TilePixels = parse.GetValue(tilePixels),
                Alpha = parse.GetValue(alpha),
            };
            var tiles = featurePath is null ? null : TileFeatureFile.Read(featurePath);

            SlideMapImage map;
            string what;
            if (scalarPath is not null)
            {
                var values = TileValues.Read(scalarPath, parse.GetValue(scalarColumn));
                if (tiles is not null && tiles.Count != values.Count)
                    throw new GigaPathException($"{scalarPath}: {values.Count} values but {featurePath} has {tiles.Count} tiles");
                map = SlideMap.DrawValues(parse.GetValue(rank) ? values.ToRanks() : values, tiles is null ? options : options.CompleteFrom(tiles));
                what = $"'{values.Name}' of {values.Count} tiles{(parse.GetValue(rank) ? " (ranks)" : "")}";
            }
            else if (parse.GetValue(component) is int k)
            {
                if (k < 1) throw new GigaPathException($"--component must be 1 or more, got {k}");
                map = SlideMap.DrawComponent(tiles!, k, options);
                what = $"principal component {k} (variance {map.ComponentVariances[k - 1]:G4})";
            }
            else
            {
                map = SlideMap.DrawPca(tiles!, options);
                what = $"PCA RGB of {tiles!.Count} tiles (component variances {string.Join(", ", map.ComponentVariances.Select(v => v.ToString("G4", CultureInfo.InvariantCulture)))})";
            }
            var image = map.Image;
            var outPath = parse.GetValue(output)!;
            image.SavePng(outPath);
            Console.WriteLine($"{outPath}: {image.Width}x{image.Height}, {what}");
            return 0;
        }));
        return cmd;
    }

    private static (double, double) ParseSize(string text)
    {
        var parts = text.ToLowerInvariant().Split('x');
        if (parts.Length == 2 && double.TryParse(parts[0], NumberStyles.Float, CultureInfo.InvariantCulture, out var w)
            && double.TryParse(parts[1], NumberStyles.Float, CultureInfo.InvariantCulture, out var h) && w > 0 && h > 0)
            return (w, h);
        throw new GigaPathException($"--slide-size '{text}': expected WIDTHxHEIGHT in level-0 pixels, e.g. 98304x65536");
    }
}
