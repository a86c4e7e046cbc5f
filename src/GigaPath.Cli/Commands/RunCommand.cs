using System.CommandLine;
using GigaPath.Cli.Progress;
using GigaPath.IO;
using GigaPath.Models.Slide;
using GigaPath.Models.Tile;
using GigaPath.Pipeline;
using GigaPath.Runtime;
using GigaPath.Models;

namespace GigaPath.Cli.Commands;

/// <summary>
/// <c>gigapath run INPUT... --tile-model DIR --slide-model DIR --out DIR</c>: slides to tile and slide embeddings, for a
/// cohort, resumable and shardable (docs/cohort-runs.md).
/// </summary>
public sealed class RunCommand : ICliCommand
{
    /// <summary>
    /// Exit code when at least one slide failed, or was left with outputs of other settings (the others were still
    /// processed).
    /// </summary>
    public const int SlidesFailedExitCode = 1;

    public Command Build()
    {
        var inputs = new Argument<string[]>("inputs") { Description = "Slide files, folders of slides, or CSV manifests (columns: path or slide_path; optional slide_id, mpp)", Arity = ArgumentArity.OneOrMore };
        var tileModel = new Option<string>("--tile-model") { Description = "Tile encoder folder (config.json + model.safetensors or pytorch_model.bin)", Required = true };
        var encoder = EncoderArgument.Create();
        var slideModel = new Option<string?>("--slide-model") { Description = "Prov-GigaPath slide encoder folder (config.json optional + model.safetensors or slide_encoder.pth); without it, slides get tile features only (the only output for tile encoders other than gigapath)" };
        var output = new Option<string>("--out") { Description = "Output folder: <slide>.h5, <slide>.slide.safetensors, <slide>.thumbnail.png, <slide>.manifest.json", Required = true };
        var tiling = new TilingArguments();
        var batchSize = new Option<int>("--batch-size") { Description = "Tiles per tile-encoder forward pass", DefaultValueFactory = _ => 16 };
        var device = new Option<string>("--device") { Description = "cpu, cuda or cuda:N", DefaultValueFactory = _ => "cpu" };
        var precision = new PrecisionArguments(scope: ", for both encoders");
        var pool = new Option<string>("--pool") { Description = "Slide embedding: mean (global pool, as the authors advise) or cls (the reference's default forward)", DefaultValueFactory = _ => "mean" };
        var allLayers = new Option<bool>("--all-layers") { Description = "Also write every layer's slide embedding (layer_0 ... layer_K)" };
        var retryFailed = new Option<bool>("--retry-failed") { Description = "Redo slides that failed in an earlier run (recorded in <out>/failed/)" };
        var force = new Option<bool>("--force") { Description = "Recompute slides whose complete outputs were made with other settings (replaced only once the new ones are complete)" };
        var shard = new Option<string?>("--shard") { Description = "Process only shard K of N (K/N, 0-based; every N-th slide in slide-id order)" };
        var maxTiles = new Option<int?>("--max-tiles") { Description = "Embed only the first N tiles of each slide (for timing runs; outputs are then partial by design)" };
        var progressMode = new Option<string>("--progress") { Description = "auto (bars on a terminal, log lines otherwise), bars or lines", DefaultValueFactory = _ => "auto" };

        var cmd = new Command("run", "Whole-slide pipeline: slides -> tile embeddings (.h5) -> slide embeddings, resumable, for a cohort.");
        cmd.Arguments.Add(inputs);
        foreach (var o in new Option[] { tileModel, encoder, slideModel, output }.Concat(tiling.All)
                     .Concat([batchSize, device]).Concat(precision.All).Concat([pool, allLayers, retryFailed, force, shard, maxTiles, progressMode]))
            cmd.Options.Add(o);
        cmd.SetAction(parse => CliRunner.Run(() =>
        {
            var outDir = parse.GetValue(output)!;
            var onDevice = DeviceSelection.ParseDevice(parse.GetValue(device)!);
            var dtype = precision.Parse(parse, onDevice);
            bool allowSlow = precision.AllowSlowDType(parse);
            using var tileEncoder = TileEncoder.Load(parse.GetValue(tileModel)!,
                new TileEncoderOptions { Encoder = parse.GetValue(encoder), Device = onDevice, DType = dtype, AllowSlowDType = allowSlow });
            var options = new PipelineOptions
            {
                Tiling = tiling.Build(parse, tileEncoder.Config.Kind),
                BatchSize = parse.GetValue(batchSize),
                Readers = parse.GetValue(tiling.Readers),
                Pooling = PoolingArgument.Parse(parse.GetValue(pool)),
                AllLayers = parse.GetValue(allLayers),
                SaveTiles = parse.GetValue(tiling.SaveTiles),
                MaxTiles = parse.GetValue(maxTiles),
            };
            var cohort = new CohortOptions
            {
                OutputDirectory = outDir,
                RetryFailed = parse.GetValue(retryFailed),
                Force = parse.GetValue(force),
                Shard = parse.GetValue(shard) is { } s ? ParseShard(s) : null,
            };
            bool bars = CohortConsole.UseBars(parse.GetValue(progressMode)!);
            var jobs = CohortInputs.Expand(parse.GetValue(inputs)!, outDir);

            using var slideEncoder = parse.GetValue(slideModel) is { } slidePath
                ? SlideEncoder.Load(slidePath, new SlideEncoderOptions { Device = onDevice, DType = dtype, AllowSlowDType = allowSlow })
                : null;
            var runner = new CohortRunner(tileEncoder, slideEncoder, options, cohort);
            int mine = cohort.Shard is { } part ? CohortInputs.Shard(jobs, part).Count : jobs.Count;
            Console.Error.WriteLine($"gigapath run: {tileEncoder.Config.Encoder} tiles of {options.Tiling.TileSize} px at {options.Tiling.TargetMpp} µm/px" +
                $"{(slideEncoder is null ? ", tile features only" : "")}; {mine} slide(s){(cohort.Shard is { } p ? $" in shard {p} of {jobs.Count}" : "")} -> {Path.GetFullPath(outDir)}");

            // The first Ctrl-C stops after cleaning up the slide in progress; a second one kills the process.
            using var interrupt = new CtrlC("interrupted: cleaning up the slide in progress; rerun the same command to resume");
            var summary = CohortConsole.Run(bars, observer => runner.Run(jobs, observer, interrupt.Token));
            CohortConsole.PrintSummary(summary, cohort, Console.Out);
            return summary.HasFailures ? SlidesFailedExitCode : 0;
        }));
        return cmd;
    }

    private static ShardSpec ParseShard(string text) =>
        ShardSpec.TryParse(text, out var shard)
            ? shard
            : throw new GigaPathException($"--shard '{text}': expected K/N with 0 <= K < N (e.g. 0/4 ... 3/4; Slurm: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)");
}
