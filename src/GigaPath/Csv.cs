using System.Globalization;
using System.Text;

namespace GigaPath;

/// <summary>
/// The one CSV reader and writer (RFC 4180): comma-separated fields, optionally double-quoted; a quoted field may hold
/// commas, line breaks and quotes written as <c>""</c>. A quote opens a quoted field only as a field's first
/// character; after the closing quote only spaces may come before the next comma. Fields are returned as written
/// (callers trim where a column's values should be); blank lines are skipped; CRLF and LF both end a row.
/// </summary>
internal static class Csv
{
    /// <summary>One row: its fields and the line it starts on (1-based).</summary>
    public sealed record Row(int Line, List<string> Fields);

    /// <summary>Every non-blank row of <paramref name="text"/>; errors name <paramref name="source"/> and the line.</summary>
    public static List<Row> Parse(string text, string source) => Parse(text, line => $"{source}, line {line}");

    /// <summary>
    /// The fields of one line (trimmed), for readers that go line by line; <paramref name="where"/> names the file and
    /// line in errors. The same rules as <see cref="Parse(string, string)"/>.
    /// </summary>
    public static List<string> ParseLine(string line, string where)
    {
        var rows = Parse(line, _ => where);
        return rows.Count == 0 ? [""] : rows[0].Fields.Select(f => f.Trim()).ToList();
    }

    private static List<Row> Parse(string text, Func<int, string> where)
    {
        var rows = new List<Row>();
        var fields = new List<string>();
        var field = new StringBuilder();
        int line = 1, rowLine = 1;
        bool any = false;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c == '"' && field.Length == 0)
            {
                // A quoted field, to its closing quote.
                any = true;
                for (i++; ; i++)
                {
                    if (i >= text.Length) throw new GigaPathException($"{where(rowLine)}: unterminated quoted field");
                    if (text[i] == '"')
                    {
                        if (i + 1 < text.Length && text[i + 1] == '"') { field.Append('"'); i++; continue; }
                        break;
                    }
                    if (text[i] == '\n') line++;
                    field.Append(text[i]);
                }
                while (i + 1 < text.Length && text[i + 1] is ' ' or '\t') i++;
                if (i + 1 < text.Length && text[i + 1] is not (',' or '\r' or '\n'))
                    throw new GigaPathException($"{where(rowLine)}: unexpected text after a quoted field");
                continue;
            }
            switch (c)
            {
                case ',':
                    fields.Add(field.ToString());
                    field.Clear();
                    any = true;
                    break;
                case '\r':
                    break;
                case '\n':
                    EndRow();
                    line++;
                    rowLine = line;
                    break;
                default:
                    field.Append(c);
                    any = true;
                    break;
            }
        }
        EndRow();
        return rows;

        void EndRow()
        {
            if (any || field.Length > 0)
            {
                fields.Add(field.ToString());
                rows.Add(new Row(rowLine, fields));
            }
            fields = [];
            field.Clear();
            any = false;
        }
    }

    /// <summary>Quotes a field when it holds a comma, a quote or a line break.</summary>
    public static string Escape(string field) =>
        field.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + field.Replace("\"", "\"\"") + "\"" : field;

    /// <summary>One CSV line of <paramref name="fields"/>, each escaped.</summary>
    public static string Line(IEnumerable<string> fields) => string.Join(",", fields.Select(Escape));

    /// <summary>Invariant, round-trippable text for a number in a CSV or report.</summary>
    public static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
