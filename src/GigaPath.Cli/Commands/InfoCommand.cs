using System.CommandLine;
using GigaPath.Runtime;

namespace GigaPath.Cli.Commands;

/// <summary>
/// <c>gigapath info [--probe] [--json]</c>: versions, the CPU and its features, which dtypes run fast here, the CUDA
/// devices, and with --probe the measured fp32 FMA peak and libtorch GEMM rates (a few seconds).
/// </summary>
public sealed class InfoCommand : ICliCommand
{
    public Command Build()
    {
        var probe = new Option<bool>("--probe") { Description = "Also measure the hardware fp32 FMA peak and libtorch's float32/bfloat16 GEMM rates (a few seconds)" };
        var json = new Option<bool>("--json") { Description = "Print JSON (for scripts)" };
        var cmd = new Command("info", "Print engine, CPU, dtype and device information: what this machine runs fast.");
        cmd.Options.Add(probe);
        cmd.Options.Add(json);
        cmd.SetAction(parse => CliRunner.Run(() =>
        {
            var report = MachineReport.Collect(parse.GetValue(probe));
            Console.Write(parse.GetValue(json) ? report.ToJsonText() + Environment.NewLine : report.ToText());
            return 0;
        }));
        return cmd;
    }
}
