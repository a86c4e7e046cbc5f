using System.CommandLine;
using GigaPath.Imaging;
using GigaPath.Visualization;

namespace GigaPath.Cli.Commands;

/// <summary><c>gigapath pca-tile</c>: the reference notebook's foreground PCA of one tile's patch tokens, next to the tile.</summary>
public sealed class PcaTileCommand : ICliCommand
{
    public Command Build()
    {
        var tokens = new Option<string>("--tokens") { Description = "embed-tiles --tokens output (.safetensors with 'tokens' [N, 1 + 196, D])", Required = true };
        var index = new Option<int>("--index") { Description = "Which tile (0-based row of 'tokens')", Required = true };
        var image = new Option<string>("--image") { Description = "The tile's image (resized and centre-cropped to 224 as the encoder saw it)", Required = true };
        var output = new Option<string>("--out") { Description = "Output PNG: tile | token PCA | overlay", Required = true };
        var threshold = new Option<double>("--threshold") { Description = "Foreground split on the min-max scaled first component", DefaultValueFactory = _ => 0.5 };
        var larger = new Option<bool>("--fg-larger") { Description = "Foreground = first component above the threshold (default: below, as the notebook)" };
        var key = new Option<string>("--key") { Description = "Tensor holding the tokens", DefaultValueFactory = _ => "tokens" };

        var cmd = new Command("pca-tile", "PCA of one tile's patch tokens (foreground/background split, then RGB of the foreground).");
        foreach (var o in new Option[] { tokens, index, image, output, threshold, larger, key }) cmd.Options.Add(o);
        cmd.SetAction(parse => CliRunner.Run(() =>
        {
            var tile = ImageDecoder.DecodeFile(parse.GetValue(image)!);
            int i = parse.GetValue(index);
            TokenPcaMapResult result;
            try
            {
                result = TokenPcaMap.DrawFromFile(parse.GetValue(tokens)!, i, tile, parse.GetValue(threshold), parse.GetValue(larger), parse.GetValue(key)!);
            }
            catch (ArgumentOutOfRangeException e) when (e.ParamName == "index")
            {
                throw new GigaPathException($"--index {i}: {e.Message.Split(" (Parameter")[0]}", e);
            }
            var outPath = parse.GetValue(output)!;
            result.Image.SavePng(outPath);
            Console.WriteLine($"{outPath}: {result.Foreground.Count(f => f)} of {result.Foreground.Count} tokens in the foreground");
            return 0;
        }));
        return cmd;
    }
}
