using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using GigaPath.IO;
using GigaPath.Models.Slide;
using GigaPath.Runtime;
using GigaPath.Weights;
using static TorchSharp.torch;

namespace GigaPath.Cli.Commands;

/// <summary>
/// <c>gigapath embed-slide</c>: tile embeddings + coordinates of one slide (safetensors or CLAM/TRIDENT .h5) →
/// slide embedding, contextualised tile embeddings and (optionally) every layer's embedding, as safetensors.
/// </summary>
public sealed class EmbedSlideCommand : ICliCommand
{
    public Command Build()
    {
        var model = new Option<string>("--model") { Description = "Slide-encoder folder (config.json optional; model.safetensors, slide_encoder.pth or model.pth) or weight file", Required = true };
        var tiles = new Option<string>("--tiles") { Description = "Tile features: .safetensors (features/tile_embeddings/embeddings + coords) or .h5 (features + coords)", Required = true };
        var output = new Option<string>("--out") { Description = "Output .safetensors file", Required = true };
        var pool = new Option<string>("--pool") { Description = "slide_embedding (and layer_i) from the cls token (cls) or the mean of the tiles (mean)", DefaultValueFactory = _ => "mean" };
        var allLayers = new Option<bool>("--all-layers") { Description = "Also write layer_0 .. layer_K (the input state and every layer's output, in the chosen pooling)" };
        var device = new Option<string>("--device") { Description = "cpu or cuda[:N]", DefaultValueFactory = _ => "cpu" };
        var precision = new PrecisionArguments();
        var allowUnexpected = new Option<bool>("--allow-unexpected-keys") { Description = "Ignore checkpoint entries the slide encoder does not use (missing ones are still an error)" };
        var maxTiles = new Option<long>("--max-tiles")
        {
            Description = "Most tiles accepted; files declaring more are refused before reading (default: the slide encoder's 1000 x 1000 grid cells)",
            DefaultValueFactory = _ => TileFeatureBudget.Default.MaxTiles,
        };
        var level0 = TilingArguments.PatchSizeLevel0Option();

        var cmd = new Command("embed-slide", "Encode one slide's tile embeddings with the Prov-GigaPath slide encoder (LongNet).");
        foreach (var o in new Option[] { model, tiles, output, pool, allLayers, device, allowUnexpected, level0, maxTiles }.Concat(precision.All))
            cmd.Options.Add(o);
        cmd.SetAction(parse => CliRunner.Run(cancellation => Run(new EmbedSlideRequest(
            parse.GetValue(model)!, parse.GetValue(tiles)!, parse.GetValue(output)!, parse.GetValue(pool)!,
            parse.GetValue(allLayers), parse.GetValue(device)!, parse.GetValue(precision.DType)!, parse.GetValue(allowUnexpected), parse.GetValue(level0),
            parse.GetValue(maxTiles), precision.AllowSlowDType(parse)), cancellation)));
        return cmd;
    }

    private sealed record EmbedSlideRequest(string Model, string Tiles, string Out, string Pool, bool AllLayers, string Device,
        string DType, bool AllowUnexpected, double? PatchSizeLevel0, long MaxTiles, bool AllowSlowDType);

    private static int Run(EmbedSlideRequest request, CancellationToken cancellation)
    {
        var pool = PoolingArgument.Parse(request.Pool);
        var device = DeviceSelection.ParseDevice(request.Device);
        var options = new SlideEncoderOptions
        {
            Device = device,
            DType = DeviceSelection.ParseDType(request.DType, device),
            AllowSlowDType = request.AllowSlowDType,
            AllowUnexpectedKeys = request.AllowUnexpected,
            OnWarning = w => Console.Error.WriteLine($"warning: {w}"),
        };
        if (request.MaxTiles <= 0)
            throw new GigaPathException($"--max-tiles: must be positive, got {request.MaxTiles}");
        // The model's input width is checked from the file's declared shape, before its data is read.
        var inChans = SlideEncoder.ReadConfig(request.Model).InputChannels;
        var features = TileFeatureFile.Read(request.Tiles, TileFeatureBudget.Default with { MaxTiles = request.MaxTiles, ExpectedDim = inChans });
        var clock = Stopwatch.StartNew();
        using var encoder = SlideEncoder.Load(request.Model, options);
        // The same calls /score/slide makes (SlideEncoderBackend): positions from the file's own metadata, the same tensors.
        using var result = encoder.EmbedAsync(features, request.AllLayers, request.PatchSizeLevel0, cancellation).GetAwaiter().GetResult();
        double seconds = clock.Elapsed.TotalSeconds;
        // What the slide cost, for the user and the output's metadata: the process's resident high-water mark (model,
        // features and forward together) and the forward's rate.
        long peakBytes = ProcessMemory.PeakResidentBytes;
        double tilesPerSecond = result.TileCount / Math.Max(seconds, 1e-9);

        var metadata = new Dictionary<string, string>
        {
            ["model"] = "Prov-GigaPath slide encoder (LongNetViT)",
            ["model_config"] = encoder.Config.ToString(),
            ["slide_embedding"] = pool == SlidePooling.Cls
                ? "LN_out(LN_enc(h_K))[cls] (reference forward, global_pool=False)"
                : "LN_out(mean over tiles of LN_enc(h_K)) (reference forward, global_pool=True)",
            ["dtype"] = DeviceSelection.Name(options.DType),
            ["device"] = request.Device,
            ["tiles_file"] = Path.GetFileName(request.Tiles),
            ["n_tiles"] = result.TileCount.ToString(CultureInfo.InvariantCulture),
            ["positions"] = result.Placement!.ToString(),
        };
        metadata["seconds"] = seconds.ToString("F1", CultureInfo.InvariantCulture);
        metadata["tiles_per_second"] = tilesPerSecond.ToString("F1", CultureInfo.InvariantCulture);
        metadata["peak_rss_bytes"] = peakBytes.ToString(CultureInfo.InvariantCulture);
        if (result.Warnings.Count > 0)
            metadata["warnings"] = string.Join("\n", result.Warnings);
        SlideEmbeddingFile.WriteWithProvenance(request.Out, result, pool, encoder, metadata);
        var layers = result.GetLayerEmbeddings(pool);

        Console.WriteLine(
            $"{request.Out}: slide_embedding [1, {encoder.Config.EmbedDim}] ({SlidePoolingNames.ToName(pool)} pooling) from {result.TileCount} tiles" +
            $"{(layers is null ? "" : $", {layers.Count} layer embeddings")} in {seconds:F1} s ({tilesPerSecond:F1} tiles/s, peak RSS {peakBytes / 1048576.0:F0} MiB); positions: {result.Placement}");
        return 0;
    }
}
