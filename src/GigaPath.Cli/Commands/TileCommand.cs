using System.CommandLine;
using System.Globalization;
using GigaPath.Pipeline;

namespace GigaPath.Cli.Commands;

/// <summary>
/// <c>gigapath tile SLIDE... --out DIR [--save-tiles]</c>: tiling only (no model): <c>&lt;slide&gt;.plan.json</c>,
/// <c>&lt;slide&gt;.thumbnail.png</c> and, with --save-tiles, the tiles as PNGs. For checking tissue detection and
/// coordinates before a cohort run.
/// </summary>
public sealed class TileCommand : ICliCommand
{
    public Command Build()
    {
        var inputs = new Argument<string[]>("inputs") { Description = "Slide files, folders of slides, or CSV manifests", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--out") { Description = "Output folder", Required = true };
        var tiling = new TilingArguments();
        var cmd = new Command("tile", "Plan the tiles of slides (tissue detection, grid, coordinates) and write a thumbnail; no model needed.");
        cmd.Arguments.Add(inputs);
        cmd.Options.Add(output);
        foreach (var o in tiling.All) cmd.Options.Add(o);
        cmd.SetAction(parse => CliRunner.Run(() =>
        {
            var outDir = parse.GetValue(output)!;
            var options = tiling.Build(parse);
            int failed = 0;
            foreach (var job in CohortInputs.Expand(parse.GetValue(inputs)!, outDir))
            {
                try
                {
                    var plan = SlideTiling.Write(job, options, outDir, parse.GetValue(tiling.SaveTiles), parse.GetValue(tiling.Readers));
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"{job.SlideId}: {plan.Tiles.Count} tiles of {plan.GridColumns}x{plan.GridRows} at {plan.TileMpp:0.####} µm/px (level {plan.Level}, read {plan.ReadSize} px, slide {plan.SlideMpp:0.####} µm/px from {plan.MppSource.ToString().ToLowerInvariant()})"));
                }
                catch (GigaPathException e)
                {
                    failed++;
                    Console.Error.WriteLine($"error: {job.SlideId}: {CliRunner.Describe(e.Message)}");
                }
            }
            Console.WriteLine($"outputs: {Path.GetFullPath(outDir)}");
            return failed > 0 ? RunCommand.SlidesFailedExitCode : 0;
        }));
        return cmd;
    }
}
