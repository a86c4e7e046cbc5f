namespace GigaPath.Cli;

public static class Program
{
    public static int Main(string[] args)
    {
        Console.WriteLine($"gigapath {GigaPath.Runtime.EngineInfo.Version}");
        return 0;
    }
}
