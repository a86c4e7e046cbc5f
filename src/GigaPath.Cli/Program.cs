using System.CommandLine;
using System.Reflection;

namespace GigaPath.Cli;

/// <summary>
/// Entry point of the <c>gigapath</c> command. Every command is a class in <c>Commands/</c> implementing
/// <see cref="ICliCommand"/>; they are discovered here so that adding a command touches one file.
/// </summary>
public static class Program
{
    public static int Main(string[] args)
    {
        GigaPath.Runtime.NativeAllocator.Configure();
        var root = BuildRoot();
        return root.Parse(args).Invoke();
    }

    public static RootCommand BuildRoot()
    {
        var root = new RootCommand($"GigaPath.Native {GigaPath.Runtime.EngineInfo.Version}: Prov-GigaPath whole-slide embeddings in .NET");
        var commands = typeof(Program).Assembly.GetTypes()
            .Where(t => typeof(ICliCommand).IsAssignableFrom(t) && t is { IsAbstract: false, IsInterface: false })
            .Select(t => (ICliCommand)Activator.CreateInstance(t)!)
            .Select(c => c.Build())
            .OrderBy(c => c.Name, StringComparer.Ordinal);
        foreach (var c in commands)
            root.Subcommands.Add(c);
        return root;
    }
}

/// <summary>One <c>gigapath</c> sub-command.</summary>
public interface ICliCommand
{
    Command Build();
}

/// <summary>Runs a command body, turning user-facing errors into a message and a non-zero exit code.</summary>
public static class CliRunner
{
    public const int UserError = 2;
    public const int InternalError = 3;

    /// <summary>The command-line flag of each library option that library messages name.</summary>
    public static IReadOnlyDictionary<string, string> Flags { get; } = new Dictionary<string, string>
    {
        [OptionNames.MaxAspectRatio] = "--max-aspect-ratio",
        [OptionNames.MaxTiles] = "--max-tiles",
        [OptionNames.Level0TileSize] = "--patch-size-level0",
        [OptionNames.DType] = "--dtype",
        [OptionNames.Device] = "--device",
        [OptionNames.AllowSlowDType] = "--allow-slow-dtype",
        [OptionNames.CudaBackend] = "a CUDA build (-p:TorchBackend=cuda)",
        [OptionNames.ConvertDType] = "--dtype",
        [OptionNames.ConvertKey] = "--key",
        [OptionNames.ScalarColumn] = "--scalar-column",
        [OptionNames.ForegroundThreshold] = "--threshold",
        [OptionNames.ForegroundLarger] = "--fg-larger",
        [OptionNames.Shard] = "--shard",
        [OptionNames.BatchSize] = "--batch-size",
        [OptionNames.Readers] = "--readers",
        [OptionNames.PipelineMaxTiles] = "--max-tiles",
        [OptionNames.SaveTiles] = "--save-tiles",
        [OptionNames.TissueMethod] = "--tissue",
        [OptionNames.TargetMpp] = "--target-mpp",
        [OptionNames.SlideMpp] = "--slide-mpp",
        [OptionNames.OutputDirectory] = "--out",
        [OptionNames.Force] = "--force",
        [OptionNames.RetryFailed] = "--retry-failed",
        [OptionNames.TileOutputPath] = "--out",
        [OptionNames.PixelFile] = "--pixels",
        [OptionNames.IncludeTokens] = "--tokens",
        [OptionNames.TileBatchSize] = "--batch-size",
        [OptionNames.Head] = "--head",
        [OptionNames.SlideModel] = "--slide-model",
        [OptionNames.AttentionFormat] = "--attention-format",
    };

    /// <summary>A library message as the command line says it: the library's option names become this CLI's flags.</summary>
    [return: System.Diagnostics.CodeAnalysis.NotNullIfNotNull(nameof(message))]
    public static string? Describe(string? message) => message is null ? null : OptionNames.ForHost(message, Flags);

    private static string Describe(GigaPathException e) => OptionNames.ForHost(e.Message, Flags);

    public static int Run(Func<int> body)
    {
        try
        {
            return body();
        }
        catch (GigaPathException e)
        {
            Console.Error.WriteLine($"error: {Describe(e)}");
            return UserError;
        }
        catch (FileNotFoundException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return UserError;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("cancelled");
            return 130;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Console.Error.WriteLine($"internal error: {e}");
            return InternalError;
        }
    }

    /// <summary>
    /// <see cref="Run(Func{int})"/> with a token that the first Ctrl-C (SIGINT) cancels: the library stops within one
    /// block or layer of its model and the command exits 130; a second Ctrl-C ends the process as usual.
    /// </summary>
    public static int Run(Func<CancellationToken, int> body)
    {
        using var interrupt = new CtrlC("interrupted: stopping after the current block of the model");
        return Run(() => body(interrupt.Token));
    }

    public static Task<int> RunAsync(Func<CancellationToken, Task<int>> body, CancellationToken token) =>
        Task.Run(async () =>
        {
            try
            {
                return await body(token);
            }
            catch (GigaPathException e)
            {
                Console.Error.WriteLine($"error: {Describe(e)}");
                return UserError;
            }
            catch (OperationCanceledException)
            {
                Console.Error.WriteLine("cancelled");
                return 130;
            }
        });
}

/// <summary>
/// While alive, the first Ctrl-C (SIGINT) prints <c>message</c> and cancels <see cref="Token"/> instead of ending the
/// process; a second one ends it as usual. The one Ctrl-C handler of the commands.
/// </summary>
internal sealed class CtrlC : IDisposable
{
    private readonly CancellationTokenSource _cancel = new();
    private readonly ConsoleCancelEventHandler _handler;

    public CtrlC(string message)
    {
        _handler = (_, e) =>
        {
            if (_cancel.IsCancellationRequested) return;
            e.Cancel = true;
            Console.Error.WriteLine(message);
            _cancel.Cancel();
        };
        Console.CancelKeyPress += _handler;
    }

    public CancellationToken Token => _cancel.Token;

    public void Dispose()
    {
        Console.CancelKeyPress -= _handler;
        _cancel.Dispose();
    }
}
