using System.CommandLine;
using GigaPath.Runtime;
using GigaPath.Weights;

namespace GigaPath.Cli.Commands;

/// <summary><c>gigapath convert-weights IN OUT.safetensors</c>: PyTorch or sharded checkpoints to one safetensors file.</summary>
public sealed class ConvertWeightsCommand : ICliCommand
{
    public Command Build()
    {
        var input = new Argument<string>("input") { Description = "Checkpoint to read: .bin/.pth/.pt (PyTorch zip), .safetensors, or model.safetensors.index.json" };
        var output = new Argument<string>("output") { Description = "safetensors file to write (atomically)" };
        var key = new Option<string?>("--key") { Description = "Read the state dict nested under this key (e.g. model); found automatically by default" };
        var dtype = new Option<string?>("--dtype") { Description = "Cast floating-point tensors: float32, bfloat16 or float16 (default: keep)" };
        var cmd = new Command("convert-weights", "Convert a checkpoint to safetensors without executing pickle code; records the source's SHA-256.");
        cmd.Arguments.Add(input);
        cmd.Arguments.Add(output);
        cmd.Options.Add(key);
        cmd.Options.Add(dtype);
        cmd.SetAction(parse => CliRunner.Run(() =>
        {
            var dtypeName = parse.GetValue(dtype);
            var result = WeightConverter.Convert(parse.GetValue(input)!, parse.GetValue(output)!, parse.GetValue(key),
                dtypeName is null ? null : DeviceSelection.ParseDType(dtypeName));
            Console.WriteLine($"wrote {result.Output}: {result.TensorCount} tensors, {result.ParameterCount:N0} values, {result.DataBytes:N0} bytes (source sha256 {result.SourceSha256})");
            return 0;
        }));
        return cmd;
    }
}
