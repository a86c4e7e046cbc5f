namespace GigaPath.Server.Hosting;

/// <summary>
/// JSON strings that are syntactically valid but not Unicode: a lone surrogate escape such as <c>"\ud800"</c> passes
/// System.Text.Json's parser, and only reading the string as .NET text throws (InvalidOperationException). The
/// request parsers turn that into a 400 instead of a 500.
/// </summary>
internal static class JsonText
{
    public static ApiException NotUnicode(InvalidOperationException e) =>
        new(400, $"request body is not valid JSON text: a string is not valid Unicode (e.g. a lone surrogate escape like \\ud800): {e.Message}", inner: e);
}
