using System.CommandLine;
using GigaPath.Imaging;
using GigaPath.Models.Tile;
using GigaPath.Pipeline;
using GigaPath.Runtime;
using GigaPath.Models;

namespace GigaPath.Cli.Commands;

/// <summary>
/// <c>gigapath embed-tiles --model DIR --out FILE.safetensors [--pixels FILE] [IMAGE|DIR ...]</c>: tile embeddings
/// (and optionally all tokens) for tile images or preprocessed pixel tensors.
/// </summary>
public sealed class EmbedTilesCommand : ICliCommand
{
    public Command Build()
    {
        var inputs = new Argument<string[]>("inputs") { Description = "Tile images (.png .jpg .jpeg .tif .tiff) or folders of them (sorted by name)", Arity = ArgumentArity.ZeroOrMore };
        var model = new Option<string>("--model") { Description = "Tile encoder folder (config.json + model.safetensors or pytorch_model.bin)", Required = true };
        var encoder = EncoderArgument.Create();
        var output = new Option<string>("--out") { Description = "Output .safetensors: embeddings [N, D], coords [N, 2] when file names are {x}x_{y}y.png, tokens with --tokens", Required = true };
        var pixels = new Option<string?>("--pixels") { Description = "Read preprocessed tiles from this safetensors file's pixel_values [N, 3, S, S] float32 (S the model's input size) instead of images" };
        var batchSize = new Option<int>("--batch-size") { Description = "Tiles per forward pass (results do not depend on it)", DefaultValueFactory = _ => 16 };
        var device = new Option<string>("--device") { Description = "cpu or cuda", DefaultValueFactory = _ => "cpu" };
        var precision = new PrecisionArguments();
        var tokens = new Option<bool>("--tokens") { Description = "Also write all final-norm tokens [N, T, D] (class token, registers, then patches)" };
        var maxAspect = new Option<double>("--max-aspect-ratio")
        {
            Description = "Thinnest image accepted (longest / shortest side); thinner images are refused before the resize, which would blow them up",
            DefaultValueFactory = _ => TilePreprocessor.DefaultMaxAspectRatio,
        };

        var cmd = new Command("embed-tiles", "Embed tiles with a tile encoder (Prov-GigaPath or another named ViT encoder).");
        cmd.Arguments.Add(inputs);
        foreach (var o in new Option[] { model, encoder, output, pixels, batchSize, device, tokens, maxAspect }.Concat(precision.All))
            cmd.Options.Add(o);
        cmd.SetAction(parse => CliRunner.Run(cancellation =>
        {
            var onDevice = DeviceSelection.ParseDevice(parse.GetValue(device));
            var request = new TileEmbeddingRequest
            {
                ModelDirectory = parse.GetValue(model)!,
                OutputPath = parse.GetValue(output)!,
                Images = parse.GetValue(inputs) ?? [],
                PixelFile = parse.GetValue(pixels),
                BatchSize = parse.GetValue(batchSize),
                IncludeTokens = parse.GetValue(tokens),
                MaxAspectRatio = parse.GetValue(maxAspect),
                EncoderOptions = new TileEncoderOptions
                {
                    Encoder = parse.GetValue(encoder),
                    Device = onDevice,
                    DType = precision.Parse(parse, onDevice),
                    AllowSlowDType = precision.AllowSlowDType(parse),
                },
            };
            var summary = TileEmbedding.Execute(request, new ConsoleProgress(), cancellation);
            Console.Error.WriteLine();
            Console.WriteLine($"wrote {summary.OutputPath}: {summary.TileCount} tiles x {summary.Dimension}" +
                $"{(summary.HasCoordinates ? ", coords" : "")}{(summary.HasTokens ? ", tokens" : "")} in {summary.Elapsed.TotalSeconds:F1} s");
            return 0;
        }));
        return cmd;
    }

    /// <summary>Reports on stderr synchronously (Progress&lt;T&gt; would post to the thread pool and print out of order).</summary>
    private sealed class ConsoleProgress : IProgress<TileProgress>
    {
        public void Report(TileProgress p) => Console.Error.Write($"\r{p.Done}/{p.Total} tiles, {p.TilesPerSecond:F2} tiles/s");
    }
}
