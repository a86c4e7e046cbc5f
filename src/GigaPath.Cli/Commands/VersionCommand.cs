using System.CommandLine;
using GigaPath.Runtime;

namespace GigaPath.Cli.Commands;

/// <summary><c>gigapath info</c>: versions and the compute devices this build can use.</summary>
public sealed class InfoCommand : ICliCommand
{
    public Command Build()
    {
        var cmd = new Command("info", "Print engine, TorchSharp and device information.");
        cmd.SetAction(_ => CliRunner.Run(() =>
        {
            Console.WriteLine($"{EngineInfo.Name} {EngineInfo.Version}");
            Console.WriteLine($"TorchSharp {EngineInfo.TorchSharpVersion}");
            Console.WriteLine($"CUDA available: {TorchSharp.torch.cuda.is_available()}");
            Console.WriteLine($"CPU threads: {TorchSharp.torch.get_num_threads()}");
            return 0;
        }));
        return cmd;
    }
}
