namespace GigaPath.Cli.Progress;

/// <summary>Progress lines of a long library call written to the console as they come, on the reporting thread (in order).</summary>
internal sealed class ConsoleLines : IProgress<string>
{
    public static readonly ConsoleLines Instance = new();

    public void Report(string value) => Console.WriteLine(value);
}
