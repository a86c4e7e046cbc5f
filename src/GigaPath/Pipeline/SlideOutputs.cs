namespace GigaPath.Pipeline;

/// <summary>
/// Where one slide's results live in the output folder: <c>&lt;id&gt;.h5</c>, <c>&lt;id&gt;.slide.safetensors</c>,
/// <c>&lt;id&gt;.thumbnail.png</c>, <c>&lt;id&gt;.manifest.json</c> (written last), optional <c>&lt;id&gt;.tiles/</c>,
/// plus the bookkeeping files <c>failed/&lt;id&gt;.json</c> and <c>.locks/&lt;id&gt;.lock</c>.
/// </summary>
internal sealed class SlideOutputs
{
    public const string FailedFolder = "failed";
    public const string LockFolder = ".locks";

    public string OutDir { get; }
    public string SlideId { get; }

    /// <summary>
    /// Whether the slide has a slide embedding among its outputs: false for a run with a tile encoder other than
    /// Prov-GigaPath's, which writes tile features only (the Prov-GigaPath slide encoder takes its own tile encoder's).
    /// </summary>
    public bool HasSlideEmbedding { get; init; } = true;

    public SlideOutputs(string outDir, string slideId)
    {
        SlideIds.Check(slideId, "slide id");
        OutDir = Path.GetFullPath(outDir);
        SlideId = slideId;
    }

    public string H5 => In($"{SlideId}.h5");
    public string SlideEmbedding => In($"{SlideId}.slide.safetensors");
    public string Thumbnail => In($"{SlideId}.thumbnail.png");
    public string Manifest => In($"{SlideId}.manifest.json");
    public string TilesDir => In($"{SlideId}.tiles");

    /// <summary>The tiling plan written by <c>gigapath tile</c> (not by <c>run</c>).</summary>
    public string Plan => In($"{SlideId}.plan.json");
    public string FailedRecord => Path.Combine(OutDir, FailedFolder, $"{SlideId}.json");
    public string Lock => Path.Combine(OutDir, LockFolder, $"{SlideId}.lock");

    /// <summary>The output files by manifest role, manifest excluded.</summary>
    public IReadOnlyDictionary<string, string> Files
    {
        get
        {
            var files = new Dictionary<string, string> { ["h5"] = H5 };
            if (HasSlideEmbedding) files["slide_embedding"] = SlideEmbedding;
            files["thumbnail"] = Thumbnail;
            return files;
        }
    }

    private string In(string name) => Path.Combine(OutDir, name);

    /// <summary>
    /// Deletes temporary files an interrupted writer of this slide left behind (<see cref="AtomicFile"/> names
    /// them <c>.&lt;file&gt;.&lt;pid&gt;.&lt;guid&gt;.tmp</c>) and its abandoned staging folders. Call only while holding
    /// the slide's lock: then nobody else is writing them.
    /// </summary>
    public int DeleteStaleTemporaries()
    {
        int removed = SlideStaging.DeleteStale(this);
        var names = Files.Values.Append(Manifest).Append(FailedRecord).ToList();
        foreach (var file in names)
        {
            var dir = Path.GetDirectoryName(file)!;
            if (!Directory.Exists(dir)) continue;
            foreach (var tmp in Directory.EnumerateFiles(dir, $".{Path.GetFileName(file)}.*.tmp"))
            {
                File.Delete(tmp);
                removed++;
            }
        }
        return removed;
    }

    /// <summary>
    /// Null when a manifest is present and describes complete outputs for <paramref name="settings"/> (every output
    /// file present with its recorded size), else why the slide still has to be computed.
    /// </summary>
    public string? Incomplete(RunSettings settings)
    {
        if (!File.Exists(Manifest)) return "no manifest";
        var manifest = SlideManifest.TryRead(Manifest);
        if (manifest is null) return "manifest unreadable";
        if (manifest.SlideId != SlideId) return $"manifest is for slide '{manifest.SlideId}'";
        if (settings.Mismatch(manifest.Settings) is { } changed) return $"settings changed: {changed}";
        foreach (var (role, file) in Files)
        {
            if (!manifest.Outputs.TryGetValue(role, out var record)) return $"manifest lists no {role} output";
            var info = new FileInfo(file);
            if (!info.Exists) return $"{info.Name} is missing";
            if (info.Length != record.SizeBytes) return $"{info.Name} has {info.Length} bytes, the manifest says {record.SizeBytes}";
        }
        if (settings.SaveTiles && (manifest.SavedTiles is not { } saved || !Directory.Exists(TilesDir)
            || Directory.EnumerateFiles(TilesDir, "*.png").Count() != saved.Count))
            return "saved tiles are missing";
        return null;
    }

    /// <summary>
    /// When the slide has complete outputs made with other settings than <paramref name="settings"/> (complete for
    /// the settings in their own manifest), what differs; else null. Such outputs are finished work: a run with other
    /// settings leaves them alone unless forced.
    /// </summary>
    public string? CompleteWithOtherSettings(RunSettings settings)
    {
        if (SlideManifest.TryRead(Manifest) is not { } manifest || manifest.SlideId != SlideId) return null;
        // Saving tiles that were not saved before adds outputs but changes no result: not a conflict.
        if ((settings with { SaveTiles = false }).Mismatch(manifest.Settings) is not { } changed) return null;
        return Incomplete(manifest.Settings) is null ? changed : null;
    }
}

/// <summary>Slide ids name output files, so they must be plain file names.</summary>
internal static class SlideIds
{
    public static void Check(string id, string what)
    {
        if (string.IsNullOrWhiteSpace(id) || id != id.Trim() || id is "." or ".." || id.StartsWith('.')
            || id.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0 || id.Contains('/') || id.Contains('\\'))
            throw new GigaPathException($"{what} '{id}' cannot name output files (use a plain file name: no slashes, no leading dot or spaces)");
    }

    /// <summary>The id a slide file gets by default: its file name without the extension.</summary>
    public static string FromPath(string path)
    {
        var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(path));
        var id = Path.GetFileNameWithoutExtension(name);
        return string.IsNullOrEmpty(id) ? name : id;
    }
}
