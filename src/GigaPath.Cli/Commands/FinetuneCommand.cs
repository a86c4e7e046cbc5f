using System.CommandLine;
using System.Globalization;
using GigaPath.Cli.Progress;
using GigaPath.Models.Heads;
using GigaPath.Training;

namespace GigaPath.Cli.Commands;

/// <summary>
/// <c>gigapath finetune</c>: k-fold cross-validation of a downstream head on a labelled cohort of feature files.
/// Option precedence: head defaults, then <c>--config</c>, then <c>--set</c>, then the named options.
/// </summary>
public sealed class FinetuneCommand : ICliCommand
{
    public Command Build()
    {
        var labels = new Option<string>("--labels") { Description = "CSV with columns slide_id,label and optionally fold", Required = true };
        var features = new Option<string>("--features") { Description = "Folder of <slide_id>.safetensors or <slide_id>.h5 feature files (tile features + coords)", Required = true };
        var head = new Option<string>("--head") { Description = "slide | abmil | linear", Required = true };
        var output = new Option<string>("--out") { Description = "Output folder (report.json, report.md, predictions.csv, fold_k/head.safetensors)", Required = true };
        var folds = new Option<int?>("--folds") { Description = "Number of folds (stratified; ignored when the CSV has a fold column). Default 5" };
        var slideModel = new Option<string?>("--slide-model") { Description = "Slide encoder folder (config.json + weights): required for --head slide; with --head abmil, pool its contextual tile outputs" };
        var epochs = new Option<int?>("--epochs") { Description = "Training epochs (abmil default 20, slide default 5)" };
        var seed = new Option<int?>("--seed") { Description = "Random seed (folds, initialisation, order). Default 0" };
        var config = new Option<string?>("--config") { Description = "Task file: 'key: value' lines (YAML subset) or a JSON object of options" };
        var lr = new Option<double?>("--lr") { Description = "Peak learning rate (default: per head; slide: blr × accumulate / 256)" };
        var dtype = new Option<string?>("--dtype") { Description = "float32 | bfloat16 (bfloat16 keeps float32 master weights)" };
        var device = new Option<string?>("--device") { Description = "cpu | cuda | cuda:N" };
        var featLayer = new Option<string?>("--feat-layer") { Description = "Slide head: layers whose outputs feed the classifier, 'a-b-...' (default 11)" };
        var freeze = new Option<bool>("--freeze") { Description = "Slide head: freeze the slide encoder, train only the classifier" };
        var globalPool = new Option<bool>("--global-pool") { Description = "Slide head: mean-pool tile tokens instead of the CLS token" };
        var level0 = TilingArguments.PatchSizeLevel0Option();
        var set = new Option<string[]>("--set") { Description = "Any option as KEY=VALUE (repeatable), e.g. --set patience=3 --set class_weights=none", AllowMultipleArgumentsPerToken = false };

        var cmd = new Command("finetune", "Cross-validate a classification head (slide encoder, attention pooling or linear probe) on tile/slide features.");
        foreach (var o in new Option[] { labels, features, head, output, folds, slideModel, epochs, seed, config, lr, dtype, device, featLayer, freeze, globalPool, level0, set })
            cmd.Options.Add(o);

        cmd.SetAction(parse => CliRunner.Run(cancellation =>
        {
            var options = new TrainingOptions(ParseHead(parse.GetValue(head)!));
            if (parse.GetValue(config) is { } configPath)
                options.ApplyFile(configPath);
            foreach (var kv in parse.GetValue(set) ?? [])
            {
                int eq = kv.IndexOf('=');
                if (eq <= 0) throw new GigaPathException($"--set '{kv}': expected KEY=VALUE");
                options.Set(kv[..eq], kv[(eq + 1)..], $"--set {kv[..eq]}");
            }
            if (parse.GetValue(folds) is int f) options.Set("folds", Inv(f), "--folds");
            if (parse.GetValue(epochs) is int e) options.Set("epochs", Inv(e), "--epochs");
            if (parse.GetValue(seed) is int s) options.Set("seed", Inv(s), "--seed");
            if (parse.GetValue(lr) is double l) options.Set("lr", l.ToString("R", CultureInfo.InvariantCulture), "--lr");
            if (parse.GetValue(dtype) is { } dt) options.Set("dtype", dt, "--dtype");
            if (parse.GetValue(device) is { } dv) options.Set("device", dv, "--device");
            if (parse.GetValue(featLayer) is { } fl) options.Set("feat_layer", fl, "--feat-layer");
            if (parse.GetValue(freeze)) options.Set("freeze", "true", "--freeze");
            if (parse.GetValue(level0) is double p0) options.Set("patch_size_level0", p0.ToString("R", CultureInfo.InvariantCulture), "--patch-size-level0");
            if (parse.GetValue(globalPool)) options.Set("global_pool", "true", "--global-pool");

            var request = new CrossValidationRequest(parse.GetValue(labels)!, parse.GetValue(features)!, parse.GetValue(output)!, options, parse.GetValue(slideModel));
            var result = CrossValidation.RunAsync(request, ConsoleLines.Instance, cancellation).GetAwaiter().GetResult();
            // What the run cost (also in report.json's "cost"): time, training rate and the process's resident
            // high-water mark (the largest step decides it).
            var rate = result.TrainingTilesPerSecond is double r ? string.Create(CultureInfo.InvariantCulture, $", {r:F1} training tiles/s") : "";
            Console.WriteLine($"report: {Path.Combine(request.OutputDirectory, Path.GetFileName(result.ReportPath))} " +
                              string.Create(CultureInfo.InvariantCulture, $"({result.SlideCount} slides in {result.Seconds:F1} s{rate}, peak RSS {result.PeakResidentBytes / 1048576.0:F0} MiB)"));
            return 0;
        }));
        return cmd;
    }

    /// <summary>slide, abmil or linear (any case).</summary>
    private static HeadKind ParseHead(string text) =>
        text.Trim().ToLowerInvariant() switch
        {
            "slide" => HeadKind.Slide,
            "abmil" => HeadKind.Abmil,
            "linear" => HeadKind.Linear,
            _ => throw new GigaPathException($"--head: unknown head '{text}' (expected slide, abmil or linear)"),
        };

    private static string Inv(int v) => v.ToString(CultureInfo.InvariantCulture);
}
