using GigaPath.Models.Tile;
using System.Diagnostics;
using System.Text.Json;
using GigaPath.Runtime;
using GigaPath.Weights;

namespace GigaPath.Pipeline;

/// <summary>What happened to one slide of a cohort run.</summary>
internal enum SlideStatus
{
    /// <summary>Computed in this run.</summary>
    Done,

    /// <summary>Already complete (manifest present and consistent): left alone.</summary>
    Skipped,

    /// <summary>Failed in this run; recorded in <c>failed/&lt;id&gt;.json</c>.</summary>
    Failed,

    /// <summary>Failed in an earlier run and not retried (no --retry-failed).</summary>
    PreviouslyFailed,

    /// <summary>Another live process holds the slide's lock.</summary>
    Busy,

    /// <summary>Complete outputs made with other settings exist: left as they are (--force recomputes them).</summary>
    SettingsChanged,
}

internal sealed record SlideOutcome(SlideJob Job, SlideStatus Status, string? Message = null, int Tiles = 0, TimeSpan Elapsed = default)
{
    public double TilesPerSecond => Elapsed > TimeSpan.Zero ? Tiles / Elapsed.TotalSeconds : 0;
}

/// <summary>The end of a cohort run: one outcome per slide, and the throughput over the slides computed.</summary>
internal sealed record CohortSummary(IReadOnlyList<SlideOutcome> Outcomes, TimeSpan Elapsed)
{
    public int Count(SlideStatus status) => Outcomes.Count(o => o.Status == status);

    public int TilesComputed => Outcomes.Where(o => o.Status == SlideStatus.Done).Sum(o => o.Tiles);

    public double TilesPerSecond
    {
        get
        {
            var busy = Outcomes.Where(o => o.Status == SlideStatus.Done).Sum(o => o.Elapsed.TotalSeconds);
            return busy > 0 ? TilesComputed / busy : 0;
        }
    }

    /// <summary>
    /// True when a slide has no outputs for this run's settings: it failed (now or in an earlier run, then it was
    /// not retried), or its outputs were made with other settings and left alone.
    /// </summary>
    public bool AnyFailed => Outcomes.Any(o => o.Status is SlideStatus.Failed or SlideStatus.PreviouslyFailed or SlideStatus.SettingsChanged);
}

/// <summary>Receives a cohort run's progress; calls come from the thread running the cohort.</summary>
internal interface ICohortObserver
{
    /// <summary><paramref name="position"/> counts from 1 over the <paramref name="count"/> slides of this run (shard).</summary>
    void SlideStarted(SlideJob job, int position, int count);

    void TilesProgress(SlideJob job, TileProgress progress);

    void SlideFinished(SlideOutcome outcome, int position, int count);
}

/// <summary>Options of a cohort run besides the pipeline's.</summary>
internal sealed record CohortOptions
{
    public required string OutDir { get; init; }

    /// <summary>Recompute slides that failed in an earlier run (otherwise they are reported and left).</summary>
    public bool RetryFailed { get; init; }

    /// <summary>
    /// Recompute slides whose complete outputs were made with other settings (otherwise they are left as they are
    /// and reported). Their old outputs are replaced only once the new ones are complete.
    /// </summary>
    public bool Force { get; init; }

    public ShardSpec? Shard { get; init; }
}

/// <summary>
/// Runs a cohort into one output folder, crash-safe and resumable: a slide whose manifest is present and consistent is
/// skipped; each slide is taken under its lock; a failing slide is recorded in <c>failed/&lt;id&gt;.json</c> and the
/// others continue; cancellation stops after cleaning up the slide in progress, and a rerun carries on from there.
/// </summary>
internal sealed class CohortRunner(SlidePipeline pipeline, CohortOptions options, ICohortObserver? observer = null)
{
    public CohortSummary Run(IReadOnlyList<SlideJob> jobs, CancellationToken cancellation = default)
    {
        var clock = Stopwatch.StartNew();
        var mine = options.Shard is { } shard ? CohortInputs.Shard(jobs, shard) : jobs.OrderBy(j => j.SlideId, StringComparer.Ordinal).ToList();
        PrepareOutputFolder();
        var outcomes = new List<SlideOutcome>();
        for (int i = 0; i < mine.Count; i++)
        {
            cancellation.ThrowIfCancellationRequested();
            observer?.SlideStarted(mine[i], i + 1, mine.Count);
            var outcome = RunOne(mine[i], cancellation);
            outcomes.Add(outcome);
            observer?.SlideFinished(outcome, i + 1, mine.Count);
        }
        return new CohortSummary(outcomes, clock.Elapsed);
    }

    /// <summary>
    /// Creates the output folder and its lock folder up front: a read-only or missing file system is one clear error
    /// before any slide starts, not a failure per slide.
    /// </summary>
    private void PrepareOutputFolder()
    {
        try
        {
            Directory.CreateDirectory(options.OutDir);
            Directory.CreateDirectory(Path.Combine(options.OutDir, SlideOutputs.LockFolder));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new GigaPathException($"{OptionNames.OutDir} {options.OutDir}: cannot create the output folder or its {SlideOutputs.LockFolder} folder ({e.Message}); choose a writable folder", e);
        }
    }

    private SlideOutcome RunOne(SlideJob job, CancellationToken cancellation)
    {
        var outputs = new SlideOutputs(options.OutDir, job.SlideId) { HasSlideEmbedding = pipeline.EncodesSlides };
        var settings = pipeline.SettingsFor(job);
        if (outputs.Incomplete(settings) is null)
            return new SlideOutcome(job, SlideStatus.Skipped, "already complete");
        if (!options.Force && outputs.CompleteWithOtherSettings(settings) is { } changed)
            return new SlideOutcome(job, SlideStatus.SettingsChanged, SettingsChangedMessage(outputs, changed));
        if (!options.RetryFailed && File.Exists(outputs.FailedRecord))
            return new SlideOutcome(job, SlideStatus.PreviouslyFailed, PreviousError(outputs.FailedRecord));

        using var slideLock = SlideLock.TryAcquire(outputs.Lock, out var holder);
        if (slideLock is null)
            return new SlideOutcome(job, SlideStatus.Busy, holder);
        // Another process may have finished the slide between the checks above and taking the lock.
        if (outputs.Incomplete(settings) is null)
            return new SlideOutcome(job, SlideStatus.Skipped, "already complete");
        if (!options.Force && outputs.CompleteWithOtherSettings(settings) is { } changedMeanwhile)
            return new SlideOutcome(job, SlideStatus.SettingsChanged, SettingsChangedMessage(outputs, changedMeanwhile));
        outputs.DeleteStaleTemporaries();

        var clock = Stopwatch.StartNew();
        try
        {
            var progress = observer is null ? null : new Progress(observer, job);
            var manifest = pipeline.Process(job, outputs, progress, cancellation);
            if (File.Exists(outputs.FailedRecord)) File.Delete(outputs.FailedRecord);
            return new SlideOutcome(job, SlideStatus.Done, null, manifest.Tiling.TileCount, clock.Elapsed);
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            var message = e is GigaPathException ? e.Message : $"{e.GetType().Name}: {e.Message}";
            try
            {
                RecordFailure(outputs, job, e, message);
            }
            catch (Exception recordError) when (recordError is IOException or UnauthorizedAccessException)
            {
                // A full or read-only disk fails the record too: still report the slide's own error, and this one.
                message += $" (the failure record {outputs.FailedRecord} could not be written either: {recordError.Message})";
            }
            return new SlideOutcome(job, SlideStatus.Failed, message, 0, clock.Elapsed);
        }
    }

    private static string SettingsChangedMessage(SlideOutputs outputs, string changed) =>
        $"{outputs.Manifest} describes complete outputs made with other settings ({changed}); they were left as they are. " +
        $"Rerun with {OptionNames.Force} to recompute them (the old outputs are replaced only once the new ones are complete), or use another {OptionNames.OutDir}";

    private static void RecordFailure(SlideOutputs outputs, SlideJob job, Exception e, string message)
    {
        var record = new FailureRecord(job.SlideId, Path.GetFullPath(job.Path), job.SlideMpp, message, e.GetType().FullName ?? e.GetType().Name,
            e is GigaPathException ? null : e.ToString(), DateTimeOffset.UtcNow, EngineInfo.Version);
        AtomicFile.WriteAllText(outputs.FailedRecord, JsonSerializer.Serialize(record, SlideManifest.Json) + "\n");
    }

    private static string PreviousError(string path)
    {
        try
        {
            var record = JsonSerializer.Deserialize<FailureRecord>(File.ReadAllText(path), SlideManifest.Json);
            return $"failed in an earlier run: {record?.Error} (rerun with {OptionNames.RetryFailed}; record: {path})";
        }
        catch (Exception e) when (e is JsonException or IOException)
        {
            return $"failed in an earlier run (rerun with {OptionNames.RetryFailed}; record: {path})";
        }
    }

    /// <summary>Synchronous, so that reports arrive in order on the cohort's thread.</summary>
    private sealed class Progress(ICohortObserver observer, SlideJob job) : IProgress<TileProgress>
    {
        public void Report(TileProgress value) => observer.TilesProgress(job, value);
    }
}

/// <summary><c>failed/&lt;id&gt;.json</c>: why a slide failed; removed when it later succeeds.</summary>
internal sealed record FailureRecord(string SlideId, string Path, double? SlideMpp, string Error, string ExceptionType, string? Details,
    DateTimeOffset FailedUtc, string EngineVersion);
