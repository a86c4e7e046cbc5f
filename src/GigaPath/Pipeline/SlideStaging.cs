namespace GigaPath.Pipeline;

/// <summary>
/// A slide's new outputs while they are being computed: written under <c>.staging/&lt;id&gt;/&lt;pid&gt;.&lt;guid&gt;/</c>
/// in the output folder (same file system, so moving them is a rename) and moved over the slide's outputs only once
/// every one of them is complete. Until then the slide's earlier outputs are untouched, so a failing or interrupted
/// rerun never loses finished work. Disposing removes whatever was not committed. Use only while holding the slide's
/// lock.
/// </summary>
internal sealed class SlideStaging : IDisposable
{
    public const string Folder = ".staging";

    private readonly SlideOutputs _final;
    private readonly string _dir;

    /// <summary>Where the new outputs are written: the same names as the final ones, in the staging folder.</summary>
    public SlideOutputs Staged { get; }

    public SlideStaging(SlideOutputs final)
    {
        _final = final;
        _dir = Path.Combine(Root(final), $"{Environment.ProcessId}.{Guid.NewGuid():N}");
        Directory.CreateDirectory(_dir);
        Staged = new SlideOutputs(_dir, final.SlideId) { HasSlideEmbedding = final.HasSlideEmbedding };
    }

    /// <summary>The folder holding every staging attempt of <paramref name="outputs"/>'s slide.</summary>
    public static string Root(SlideOutputs outputs) => Path.Combine(outputs.OutDir, Folder, outputs.SlideId);

    /// <summary>
    /// Moves the complete staged outputs into place and then writes <paramref name="writeManifest"/>'s manifest, last.
    /// The old manifest goes first, so no moment shows a manifest next to outputs it does not describe; each file is
    /// replaced by an atomic rename. A crash in between leaves complete new outputs without a manifest: the next run
    /// recomputes the slide.
    /// </summary>
    public void Commit(Action<string> writeManifest)
    {
        File.Delete(_final.Manifest);
        foreach (var (role, staged) in Staged.Files)
            File.Move(staged, _final.Files[role], overwrite: true);
        // Saved tiles of an earlier run describe other results: they are replaced, or removed when none are saved now.
        if (Directory.Exists(_final.TilesDir))
            Directory.Move(_final.TilesDir, Path.Combine(_dir, "replaced-tiles"));
        if (Directory.Exists(Staged.TilesDir))
            Directory.Move(Staged.TilesDir, _final.TilesDir);
        writeManifest(_final.Manifest);
    }

    public void Dispose()
    {
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
        TryRemoveEmpty(Path.GetDirectoryName(_dir)!);
    }

    /// <summary>Removes the staging attempts a killed process left for this slide (call while holding its lock).</summary>
    public static int DeleteStale(SlideOutputs outputs)
    {
        var root = Root(outputs);
        if (!Directory.Exists(root)) return 0;
        int n = Directory.EnumerateFileSystemEntries(root).Count();
        Directory.Delete(root, recursive: true);
        return n;
    }

    private static void TryRemoveEmpty(string dir)
    {
        try
        {
            if (Directory.Exists(dir) && !Directory.EnumerateFileSystemEntries(dir).Any()) Directory.Delete(dir);
        }
        catch (IOException)
        {
            // Another process of the same slide id started staging meanwhile (it holds the lock now); its folder stays.
        }
    }
}
