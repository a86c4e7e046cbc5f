namespace GigaPath.Server;

internal static class ServerInfo
{
    public const string Name = "gigapath-serve";
}
