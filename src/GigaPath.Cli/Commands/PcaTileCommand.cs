using System.CommandLine;
using GigaPath.Imaging;
using GigaPath.Visualization;
using GigaPath.Weights;

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
            var path = parse.GetValue(tokens)!;
            var name = parse.GetValue(key)!;
            int i = parse.GetValue(index);
            float[] row;
            int dim;
            using (var file = SafeTensorsFile.Open(path))
            {
                if (!file.Contains(name)) throw new GigaPathException($"{path}: no '{name}' tensor (embed-tiles writes it with --tokens); found: {string.Join(", ", file.Names)}");
                var shape = file.GetInfo(name).Shape;
                if (shape.Length != 3) throw new GigaPathException($"{path}: '{name}' must be [N, tokens, D], got [{string.Join(", ", shape)}]");
                if (i < 0 || i >= shape[0]) throw new GigaPathException($"--index {i} is outside 0..{shape[0] - 1} ({path} holds {shape[0]} tiles)");
                dim = checked((int)shape[2]);
                long rowBytes = shape[1] * shape[2] * TensorDTypes.SizeOf(file.GetInfo(name).DType);
                if (file.GetInfo(name).DType == TensorDType.F32)
                {
                    // Only this tile's rows are touched in the memory-mapped file.
                    row = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(file.GetRawBytes(name, i * rowBytes, checked((int)rowBytes))).ToArray();
                }
                else
                {
                    using var scope = TorchSharp.torch.NewDisposeScope();
                    row = file.Load(name, TorchSharp.torch.ScalarType.Float32)[i].contiguous().data<float>().ToArray();
                }
            }
            var tile = ImageDecoder.DecodeFile(parse.GetValue(image)!);
            var result = TokenPcaMap.Render(row, dim, tile, parse.GetValue(threshold), parse.GetValue(larger));
            var outPath = parse.GetValue(output)!;
            result.Image.SavePng(outPath);
            Console.WriteLine($"{outPath}: {result.Foreground.Count(f => f)} of {result.Foreground.Length} tokens in the foreground");
            return 0;
        }));
        return cmd;
    }
}
