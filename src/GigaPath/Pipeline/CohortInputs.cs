using System.Globalization;
using GigaPath.IO;

namespace GigaPath.Pipeline;

/// <summary>
/// Turns a cohort's inputs into slide jobs: slide files, folders (their slide files, not recursive) and CSV manifests
/// with a <c>path</c> (or <c>slide_path</c>) column and optional <c>slide_id</c> and <c>mpp</c> (the slide's level-0
/// µm/px) columns; relative paths in a CSV are relative to the CSV's folder.
/// </summary>
public static class CohortInputs
{
    /// <summary>File extensions taken from a folder (OpenSlide formats, and plain images, which need a given MPP).</summary>
    public static readonly IReadOnlyList<string> SlideExtensions =
        [".svs", ".tif", ".tiff", ".ndpi", ".vms", ".vmu", ".scn", ".mrxs", ".svslide", ".bif", ".png", ".jpg", ".jpeg"];

    /// <summary>Our own thumbnails are never slides, even in a folder that also holds outputs.</summary>
    private const string ThumbnailSuffix = ".thumbnail.png";

    /// <summary>
    /// Jobs sorted by slide id. A path that does not exist becomes a job too (it fails as a missing file, recorded
    /// with the others). Duplicate slide ids, or one file listed twice, throw <see cref="GigaPathException"/>, since
    /// they would share outputs.
    /// </summary>
    /// <param name="inputs">Slide files, folders of slides and CSV manifests.</param>
    /// <param name="excludeDirectory">A folder whose files are not taken as slides (the output folder); may be null.</param>
    public static IReadOnlyList<SlideJob> Expand(IEnumerable<string> inputs, string? excludeDirectory = null)
    {
        ArgumentNullException.ThrowIfNull(inputs);
        var jobs = new List<SlideJob>();
        var exclude = excludeDirectory is null ? null : Path.TrimEndingDirectorySeparator(Path.GetFullPath(excludeDirectory));
        foreach (var input in inputs)
        {
            if (Directory.Exists(input))
            {
                if (exclude is not null && Path.TrimEndingDirectorySeparator(Path.GetFullPath(input)) == exclude)
                    continue;
                var files = Directory.EnumerateFiles(input)
                    .Where(f => SlideExtensions.Contains(Path.GetExtension(f).ToLowerInvariant()) && !Path.GetFileName(f).StartsWith('.')
                                && !f.EndsWith(ThumbnailSuffix, StringComparison.Ordinal))
                    .Order(StringComparer.Ordinal)
                    .ToList();
                if (files.Count == 0)
                    throw new GigaPathException($"{input}: folder holds no slide files ({string.Join(" ", SlideExtensions)})");
                jobs.AddRange(files.Select(f => new SlideJob(SlideIds.FromPath(f), f)));
            }
            else if (Path.GetExtension(input).Equals(".csv", StringComparison.OrdinalIgnoreCase))
            {
                jobs.AddRange(ReadCsv(input));
            }
            else
            {
                jobs.Add(new SlideJob(SlideIds.FromPath(input), input));
            }
        }
        if (jobs.Count == 0)
            throw new GigaPathException("no slides given");
        foreach (var job in jobs)
            SlideIds.Check(job.SlideId, $"slide id of {job.Path}");
        var duplicates = jobs.GroupBy(j => j.SlideId, StringComparer.Ordinal).Where(g => g.Count() > 1).ToList();
        if (duplicates.Count > 0)
            throw new GigaPathException(
                "slide ids must be unique (they name the outputs); duplicated: " +
                string.Join("; ", duplicates.Take(5).Select(g => $"'{g.Key}' for {string.Join(", ", g.Select(j => j.Path))}")) +
                " (give distinct ids in a CSV manifest's slide_id column)");
        // One file under two names (a symbolic or hard link) is one slide: told by device and inode, without opening
        // anything. Entries that are not regular files (a FIFO, a link loop, a missing file) are left to fail alone
        // when their job opens them.
        var aliases = jobs.Select(j => (Job: j, Status: FileIdentity.Stat(j.Path)))
            .Where(s => s.Status.Kind == FileIdentity.FileKind.Regular)
            .GroupBy(s => s.Status.Key)
            .Where(g => g.Count() > 1).ToList();
        if (aliases.Count > 0)
            throw new GigaPathException(
                "each slide file may be listed once (two ids for one slide would count it as two slides downstream); listed more than once (one file under several names: symbolic or hard links, or the same path): " +
                string.Join("; ", aliases.Take(5).Select(g => string.Join(", ", g.Select(s => $"'{s.Job.SlideId}' ({s.Job.Path})")))));
        return jobs.OrderBy(j => j.SlideId, StringComparer.Ordinal).ToList();
    }

    /// <summary>Reads a CSV manifest; every error names the file and the line.</summary>
    /// <param name="path">The CSV file.</param>
    public static IReadOnlyList<SlideJob> ReadCsv(string path)
    {
        if (!File.Exists(path))
            throw new GigaPathException($"{path}: CSV manifest not found");
        var rows = Csv.Parse(File.ReadAllText(path), path);
        if (rows.Count == 0)
            throw new GigaPathException($"{path}: empty CSV manifest (expected a header with a 'path' or 'slide_path' column)");
        var header = rows[0].Fields.Select(h => h.Trim().TrimStart('\uFEFF').ToLowerInvariant()).ToList();
        int pathCol = header.IndexOf("path") is var p and >= 0 ? p : header.IndexOf("slide_path");
        if (pathCol < 0)
            throw new GigaPathException($"{path}: the header has no 'path' or 'slide_path' column (columns: {string.Join(", ", header)})");
        int idCol = header.IndexOf("slide_id"), mppCol = header.IndexOf("mpp");
        var baseDir = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var jobs = new List<SlideJob>();
        foreach (var row in rows.Skip(1))
        {
            if (row.Fields.All(string.IsNullOrWhiteSpace)) continue;
            string Field(int col) => col < row.Fields.Count ? row.Fields[col].Trim() : "";
            var slidePath = Field(pathCol);
            if (slidePath.Length == 0)
                throw new GigaPathException($"{path}, line {row.Line}: empty '{header[pathCol]}'");
            slidePath = Path.IsPathRooted(slidePath) ? slidePath : Path.Combine(baseDir, slidePath);
            var id = idCol >= 0 && Field(idCol).Length > 0 ? Field(idCol) : SlideIds.FromPath(slidePath);
            double? mpp = null;
            if (mppCol >= 0 && Field(mppCol).Length > 0)
            {
                if (!double.TryParse(Field(mppCol), NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v) || v <= 0)
                    throw new GigaPathException($"{path}, line {row.Line}: mpp '{Field(mppCol)}' is not a positive number of micrometres per pixel");
                mpp = v;
            }
            jobs.Add(new SlideJob(id, slidePath, mpp));
        }
        if (jobs.Count == 0)
            throw new GigaPathException($"{path}: the CSV manifest lists no slides");
        return jobs;
    }

    /// <summary>The jobs of shard <paramref name="shard"/>: every N-th slide in slide-id order, starting at K.</summary>
    /// <param name="jobs">All the cohort's slides.</param>
    /// <param name="shard">Which shard.</param>
    public static IReadOnlyList<SlideJob> Shard(IReadOnlyList<SlideJob> jobs, ShardSpec shard)
    {
        ArgumentNullException.ThrowIfNull(jobs);
        if (shard.Count < 1) throw new ArgumentOutOfRangeException(nameof(shard), "a shard of no shards (default ShardSpec)");
        return jobs.OrderBy(j => j.SlideId, StringComparer.Ordinal).Where((_, i) => i % shard.Count == shard.Index).ToList();
    }
}

/// <summary>Shard K of N (0 ≤ K &lt; N): every N-th slide in slide-id order, starting at K. Text form <c>K/N</c>.</summary>
public readonly record struct ShardSpec
{
    /// <summary>Shard <paramref name="index"/> of <paramref name="count"/>.</summary>
    /// <param name="index">K, from 0 to <paramref name="count"/> - 1.</param>
    /// <param name="count">N, at least 1.</param>
    public ShardSpec(int index, int count)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(count, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, count);
        Index = index;
        Count = count;
    }

    /// <summary>K: which shard, from 0.</summary>
    public int Index { get; }

    /// <summary>N: how many shards.</summary>
    public int Count { get; }

    /// <summary>Parses <c>K/N</c> (e.g. <c>0/4</c>); throws <see cref="GigaPathException"/> otherwise.</summary>
    /// <param name="text">The shard as <c>K/N</c>.</param>
    public static ShardSpec Parse(string text) =>
        TryParse(text, out var shard)
            ? shard
            : throw new GigaPathException($"{OptionNames.Shard} '{text}': expected K/N with 0 <= K < N (e.g. 0/4 ... 3/4; Slurm: $SLURM_ARRAY_TASK_ID/$SLURM_ARRAY_TASK_COUNT)")
            {
                Option = OptionNames.Shard,
            };

    /// <summary>Parses <c>K/N</c> with 0 ≤ K &lt; N; false for anything else.</summary>
    /// <param name="text">The shard as <c>K/N</c>.</param>
    /// <param name="shard">The shard, when the text is one.</param>
    public static bool TryParse(string? text, out ShardSpec shard)
    {
        var parts = text?.Split('/') ?? [];
        if (parts.Length == 2
            && int.TryParse(parts[0].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var k)
            && int.TryParse(parts[1].Trim(), NumberStyles.None, CultureInfo.InvariantCulture, out var n)
            && n >= 1 && k < n)
        {
            shard = new ShardSpec(k, n);
            return true;
        }
        shard = default;
        return false;
    }

    /// <summary>The shard as <c>K/N</c>.</summary>
    public override string ToString() => $"{Index}/{Count}";
}
