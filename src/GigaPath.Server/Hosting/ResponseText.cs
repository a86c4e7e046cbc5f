using System.Text.RegularExpressions;

namespace GigaPath.Server.Hosting;

/// <summary>
/// Text the server sends to clients carries no file system paths: messages from the library name files by their
/// paths (the model folder, a temporary file, a file a hostile upload pointed at), which tell an unauthenticated
/// caller how the server's machine is laid out. Every absolute path whose top folder exists on this machine becomes
/// its last component (<c>/srv/models/tile/model.safetensors</c> → <c>model.safetensors</c>); the logs keep the
/// full text. Routes such as <c>/score/slide</c> are left alone: no such top folder exists.
/// </summary>
internal static partial class ResponseText
{
    // An absolute path of two or more components, not inside a word or a URL ("http://host/a/b", "a/b").
    [GeneratedRegex(@"(?<![\w.:/~-])/(?<top>[^\s/'""(),;:]+)(?:/[^\s/'""(),;:]*)+")]
    private static partial Regex AbsolutePath();

    public static string WithoutPaths(string text) =>
        text.Contains('/') ? AbsolutePath().Replace(text, m => IsLocal(m.Groups["top"].Value) ? LastName(m.Value) : m.Value) : text;

    private static bool IsLocal(string top)
    {
        try
        {
            return Directory.Exists("/" + top);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return true;
        }
    }

    private static string LastName(string path)
    {
        var name = Path.GetFileName(path.TrimEnd('/', '.'));
        return name.Length > 0 ? name : "(a path)";
    }
}
