using System.CommandLine;
using GigaPath.Runtime;
using static TorchSharp.torch;

namespace GigaPath.Cli.Commands;

/// <summary>--dtype and --allow-slow-dtype, shared by the commands that run a model.</summary>
internal sealed class PrecisionArguments
{
    public PrecisionArguments(string defaultValue = "float32", string? scope = null)
    {
        DType = new Option<string>("--dtype")
        {
            Description = "float32 (exact), bfloat16 (CUDA, or CPUs with AVX512_BF16/AMX), float16 (CUDA only) or auto " +
                          $"(bfloat16 where the device runs it fast, else float32){scope}",
            DefaultValueFactory = _ => defaultValue,
        };
    }

    public Option<string> DType { get; }

    public Option<bool> AllowSlow { get; } = new("--allow-slow-dtype")
    {
        Description = "Run bfloat16 even on a CPU without bfloat16 hardware, where it is emulated (hundreds of times slower)",
    };

    public IEnumerable<Option> All => [DType, AllowSlow];

    /// <summary>The --dtype value for <paramref name="device"/> ("auto" depends on it).</summary>
    public ScalarType Parse(ParseResult parse, Device device) => DeviceSelection.ParseDType(parse.GetValue(DType), device);

    public bool AllowSlowDType(ParseResult parse) => parse.GetValue(AllowSlow);
}
