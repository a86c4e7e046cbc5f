using System.Globalization;
using System.Text;

namespace GigaPath.Training;

/// <summary>Minimal RFC 4180 CSV: comma separated, fields optionally double-quoted with "" as an escaped quote.</summary>
internal static class Csv
{
    /// <summary>Splits one line into fields; <paramref name="where"/> names the file and line for errors.</summary>
    public static List<string> ParseLine(string line, string where)
    {
        var fields = new List<string>();
        var sb = new StringBuilder();
        int i = 0;
        while (true)
        {
            sb.Clear();
            if (i < line.Length && line[i] == '"')
            {
                i++;
                while (true)
                {
                    if (i >= line.Length) throw new GigaPathException($"{where}: unterminated quoted field");
                    if (line[i] == '"')
                    {
                        if (i + 1 < line.Length && line[i + 1] == '"') { sb.Append('"'); i += 2; continue; }
                        i++;
                        break;
                    }
                    sb.Append(line[i++]);
                }
                if (i < line.Length && line[i] != ',')
                    throw new GigaPathException($"{where}: unexpected text after a quoted field");
            }
            else
            {
                while (i < line.Length && line[i] != ',') sb.Append(line[i++]);
            }
            fields.Add(sb.ToString().Trim());
            if (i >= line.Length) return fields;
            i++; // the comma
        }
    }

    /// <summary>Quotes a field when it holds a comma, a quote or a line break.</summary>
    public static string Escape(string field) =>
        field.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + field.Replace("\"", "\"\"") + "\"" : field;

    public static string Line(IEnumerable<string> fields) => string.Join(",", fields.Select(Escape));

    /// <summary>Invariant, round-trippable text for a number in a CSV or report.</summary>
    public static string Number(double value) => value.ToString("R", CultureInfo.InvariantCulture);
}
