using System.Globalization;

namespace GigaPath.Training;

/// <summary>One labelled slide: its id (the feature file's base name), its label text and class index, and an optional fold.</summary>
internal sealed record LabelRow(string SlideId, string Label, int ClassIndex, int? Fold, int LineNumber);

/// <summary>
/// The labels CSV of a task: columns <c>slide_id</c> and <c>label</c> (any order, other columns ignored) and optionally
/// <c>fold</c> (0-based test fold of each slide). Classes are the distinct labels, ordered numerically when every label is
/// an integer (then the task counts as graded: ISUP grade, stage) and alphabetically otherwise, unless an explicit order
/// is given.
/// </summary>
internal sealed class LabelTable
{
    public string Path { get; }
    public IReadOnlyList<LabelRow> Rows { get; }
    public IReadOnlyList<string> Classes { get; }

    /// <summary>True when every label is an integer, so the classes have an order (quadratic kappa is reported).</summary>
    public bool Graded { get; }

    public bool HasFolds => Rows.Count > 0 && Rows[0].Fold is not null;

    private LabelTable(string path, IReadOnlyList<LabelRow> rows, IReadOnlyList<string> classes, bool graded)
    {
        Path = path;
        Rows = rows;
        Classes = classes;
        Graded = graded;
    }

    public static LabelTable Load(string path, IReadOnlyList<string>? classOrder = null)
    {
        if (!File.Exists(path)) throw new GigaPathException($"{path}: labels file not found");
        var lines = File.ReadAllLines(path);
        int headerIndex = Array.FindIndex(lines, l => l.Trim().Length > 0);
        if (headerIndex < 0) throw new GigaPathException($"{path}: labels file is empty");
        var header = Csv.ParseLine(lines[headerIndex].TrimStart('\uFEFF'), $"{path}:{headerIndex + 1}")
            .Select(h => h.ToLowerInvariant()).ToList();
        int idCol = header.IndexOf("slide_id"), labelCol = header.IndexOf("label"), foldCol = header.IndexOf("fold");
        if (idCol < 0 || labelCol < 0)
            throw new GigaPathException($"{path}: the header must have columns 'slide_id' and 'label' (found: {string.Join(", ", header)})");

        var raw = new List<(string Id, string Label, int? Fold, int Line)>();
        var notNames = new List<string>();
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = headerIndex + 1; i < lines.Length; i++)
        {
            if (lines[i].Trim().Length == 0) continue;
            string where = $"{path}:{i + 1}";
            var f = Csv.ParseLine(lines[i], where);
            string Field(int col) => col < f.Count ? f[col] : "";
            string id = Field(idCol), label = Field(labelCol);
            if (id.Length == 0) throw new GigaPathException($"{where}: empty slide_id");
            if (label.Length == 0) throw new GigaPathException($"{where}: slide '{id}' has no label");
            if (FeatureFiles.NotAName(id) is { } problem)
                notNames.Add($"line {i + 1}: '{id}' {problem}");
            if (seen.TryGetValue(id, out int firstLine))
                throw new GigaPathException($"{where}: slide '{id}' is listed twice (first on line {firstLine})");
            seen[id] = i + 1;
            int? fold = null;
            if (foldCol >= 0)
            {
                var text = Field(foldCol);
                if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out int k) || k < 0)
                    throw new GigaPathException($"{where}: fold of slide '{id}' must be a non-negative integer, got '{text}'");
                fold = k;
            }
            raw.Add((id, label, fold, i + 1));
        }
        if (notNames.Count > 0)
            throw new GigaPathException(
                $"{path}: slide ids are file names (without the extension) inside the features folder, not paths; " +
                $"{notNames.Count} row(s) are not: {string.Join("; ", notNames.Take(10))}{(notNames.Count > 10 ? "; …" : "")}");
        if (raw.Count == 0) throw new GigaPathException($"{path}: no slides listed");

        var distinct = raw.Select(r => r.Label).Distinct(StringComparer.Ordinal).ToList();
        bool numeric = distinct.All(l => long.TryParse(l, NumberStyles.Integer, CultureInfo.InvariantCulture, out _));
        List<string> classes;
        if (classOrder is { Count: > 0 })
        {
            classes = classOrder.ToList();
            if (classes.Distinct(StringComparer.Ordinal).Count() != classes.Count)
                throw new GigaPathException($"classes: the class list {string.Join(",", classes)} has duplicates");
            var unknown = distinct.Where(l => !classes.Contains(l)).ToList();
            if (unknown.Count > 0)
                throw new GigaPathException($"{path}: label(s) {string.Join(", ", unknown)} are not in the configured classes ({string.Join(", ", classes)})");
        }
        else
        {
            classes = numeric
                ? distinct.OrderBy(l => long.Parse(l, CultureInfo.InvariantCulture)).ToList()
                : distinct.OrderBy(l => l, StringComparer.Ordinal).ToList();
        }
        if (classes.Count < 2)
            throw new GigaPathException($"{path}: every slide has label '{classes[0]}'; a classifier needs at least two classes");

        var rows = raw.Select(r => new LabelRow(r.Id, r.Label, classes.IndexOf(r.Label), r.Fold, r.Line)).ToList();
        return new LabelTable(path, rows, classes, numeric);
    }
}
