using System.CommandLine;
using GigaPath.Cli.Progress;
using GigaPath.Training;

namespace GigaPath.Cli.Commands;

/// <summary><c>gigapath predict</c>: per-slide class probabilities (and per-tile attention for attention pooling) from a trained head.</summary>
public sealed class PredictCommand : ICliCommand
{
    public Command Build()
    {
        var head = new Option<string>("--head") { Description = "Head checkpoint: head.safetensors (head.json beside it) or its fold folder", Required = true };
        var inputs = new Argument<string[]>("inputs") { Description = "Feature files (.safetensors, .h5) or folders of them", Arity = ArgumentArity.OneOrMore };
        var output = new Option<string>("--out") { Description = "Predictions CSV (written atomically)", DefaultValueFactory = _ => "predictions.csv" };
        var attention = new Option<string?>("--attention-dir") { Description = "Folder for per-tile attention files (attention heads; default: 'attention' next to --out)" };
        var format = new Option<string>("--attention-format") { Description = "csv | safetensors", DefaultValueFactory = _ => "csv" };
        var device = new Option<string>("--device") { Description = "cpu | cuda | cuda:N", DefaultValueFactory = _ => "cpu" };
        var dtype = new Option<string>("--dtype") { Description = "float32 | bfloat16", DefaultValueFactory = _ => "float32" };
        var slideModel = new Option<string?>("--slide-model") { Description = "Contextual attention heads: the slide encoder they were trained with, if it moved (its SHA-256 is checked)" };
        var level0 = TilingArguments.PatchSizeLevel0Option();

        var cmd = new Command("predict", "Score slides with a trained head: probabilities per slide, attention per tile.");
        cmd.Arguments.Add(inputs);
        foreach (var o in new Option[] { head, output, attention, format, device, dtype, slideModel, level0 }) cmd.Options.Add(o);
        cmd.SetAction(parse => CliRunner.Run(cancellation =>
        {
            var attentionFormat = parse.GetValue(format)!.Trim().ToLowerInvariant() switch
            {
                "csv" => AttentionFileFormat.Csv,
                "safetensors" => AttentionFileFormat.SafeTensors,
                var other => throw new GigaPathException($"--attention-format: '{other}' is not csv or safetensors"),
            };
            var request = new PredictionRequest(parse.GetValue(head)!, parse.GetValue(inputs)!, parse.GetValue(output)!,
                parse.GetValue(attention), attentionFormat, parse.GetValue(device)!, parse.GetValue(dtype)!, parse.GetValue(slideModel),
                parse.GetValue(level0));
            var results = Predictor.RunAsync(request, ConsoleLines.Instance, cancellation).GetAwaiter().GetResult();
            Console.WriteLine($"{results.Count} slide(s) scored: {Path.GetFullPath(request.OutputCsv)}");
            return 0;
        }));
        return cmd;
    }
}
