namespace GigaPath.Tests.Cli;

/// <summary>Runs <c>gigapath</c> in-process through <c>Program.Main</c>, capturing what it prints.</summary>
public sealed record CliInvocation(int ExitCode, string Out, string Error)
{
    private static readonly object Gate = new();

    public static CliInvocation Run(params string[] args)
    {
        lock (Gate)
        {
            var (oldOut, oldErr) = (Console.Out, Console.Error);
            var (stdout, stderr) = (new StringWriter(), new StringWriter());
            Console.SetOut(stdout);
            Console.SetError(stderr);
            try
            {
                int code = GigaPath.Cli.Program.Main(args);
                return new CliInvocation(code, stdout.ToString(), stderr.ToString());
            }
            finally
            {
                Console.SetOut(oldOut);
                Console.SetError(oldErr);
            }
        }
    }

    public override string ToString() => $"exit {ExitCode}\nstdout: {Out}\nstderr: {Error}";
}
