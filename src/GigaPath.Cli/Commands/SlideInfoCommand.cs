using System.CommandLine;
using System.Globalization;
using GigaPath.Slides;

namespace GigaPath.Cli.Commands;

/// <summary><c>gigapath slide-info</c>: a slide's levels, resolution and metadata, and how it would be tiled.</summary>
public sealed class SlideInfoCommand : ICliCommand
{
    public Command Build()
    {
        var slideArg = new Argument<string>("slide") { Description = "Whole-slide image (any OpenSlide format) or a PNG/JPEG/TIFF image with --slide-mpp." };
        var slideMpp = new Option<double?>("--slide-mpp") { Description = "Micrometres per level-0 pixel, overriding (or supplying) the slide's metadata." };
        var targetMpp = new Option<double>("--target-mpp") { Description = "Tile resolution in µm/px.", DefaultValueFactory = _ => 0.5 };
        var tileSize = new Option<int>("--tile-size") { Description = "Tile side in pixels at --target-mpp.", DefaultValueFactory = _ => 256 };
        var tissue = new Option<string>("--tissue") { Description = "Tissue detection: luminance (Otsu, the reference rule), saturation (Otsu) or none.", DefaultValueFactory = _ => "luminance" };
        tissue.AcceptOnlyFromAmong("luminance", "saturation", "none");
        var minTissue = new Option<double>("--min-tissue") { Description = "Keep tiles whose tissue fraction exceeds this.", DefaultValueFactory = _ => 0.1 };
        var thumbnail = new Option<string?>("--thumbnail") { Description = "Write a PNG of the slide with the tissue mask and kept tiles." };
        var properties = new Option<bool>("--properties") { Description = "Print every metadata property." };

        var cmd = new Command("slide-info", "Show a slide's pyramid, resolution and metadata, and plan its tiles.");
        cmd.Arguments.Add(slideArg);
        foreach (var o in new Option[] { slideMpp, targetMpp, tileSize, tissue, minTissue, thumbnail, properties })
            cmd.Options.Add(o);
        cmd.SetAction(parse => CliRunner.Run(() =>
        {
            using var slide = SlideOpener.Open(parse.GetValue(slideArg)!, parse.GetValue(slideMpp));
            PrintSlide(slide, parse.GetValue(properties));
            var options = new TilingOptions
            {
                SlideMpp = parse.GetValue(slideMpp),
                TargetMpp = parse.GetValue(targetMpp),
                TileSize = parse.GetValue(tileSize),
                TissueMethod = TilingArguments.ParseTissue(parse.GetValue(tissue)!),
                MinTissueFraction = parse.GetValue(minTissue),
            };
            var plan = TilingPlanner.Plan(slide, options);
            PrintPlan(plan);
            if (parse.GetValue(thumbnail) is { } png)
            {
                TilingThumbnail.Write(png, slide, plan);
                Console.WriteLine($"thumbnail: {png}");
            }
            return 0;
        }));
        return cmd;
    }

    private static void PrintSlide(ISlide slide, bool allProperties)
    {
        Console.WriteLine($"slide: {slide.Path}");
        Console.WriteLine($"vendor: {slide.Vendor}" + (slide.Vendor != SlideOpener.PlainImageVendor ? $" (OpenSlide {SlideOpener.OpenSlideVersion})" : ""));
        Console.WriteLine($"mpp: {N(slide.MppX)} x {N(slide.MppY)} µm/px, objective: {N(slide.ObjectivePower)}");
        for (int i = 0; i < slide.LevelCount; i++)
        {
            var (w, h) = slide.LevelDimensions(i);
            Console.WriteLine($"level {i}: {w} x {h}, downsample {N(slide.LevelDownsample(i))}");
        }
        foreach (var (name, (w, h)) in slide.AssociatedImages)
            Console.WriteLine($"associated image {name}: {w} x {h}");
        if (allProperties)
            foreach (var (k, v) in slide.Properties.OrderBy(p => p.Key, StringComparer.Ordinal))
                Console.WriteLine($"  {k} = {v.ReplaceLineEndings(" ")}");
    }

    private static void PrintPlan(TilingPlan plan)
    {
        Console.WriteLine($"tiling: {plan.TileSize} px at {N(plan.TargetMpp)} µm/px (slide {N(plan.SlideMpp)} µm/px from {plan.MppSource.ToString().ToLowerInvariant()})");
        Console.WriteLine($"read: level {plan.Level} ({N(plan.LevelMpp)} µm/px), {plan.ReadSize} px per tile" +
                          (plan.Resampled ? $", resized to {plan.TileSize} (Pillow bicubic)" : "") + $"; tile MPP {N(plan.TileMpp)}");
        var tissue = plan.TissueThreshold is { } threshold
            ? $"tissue fraction > {N(plan.MinTissueFraction)} ({plan.TissueMethod}, threshold {N(threshold)})"
            : "no tissue detection";
        Console.WriteLine($"grid: {plan.GridColumns} x {plan.GridRows} whole tiles; kept {plan.Tiles.Count}: {tissue}");
    }

    private static string N(double? v) => v is { } d ? d.ToString("0.####", CultureInfo.InvariantCulture) : "unknown";
}
