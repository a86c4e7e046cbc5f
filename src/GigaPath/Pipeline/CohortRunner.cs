using GigaPath.Models.Slide;
using GigaPath.Models.Tile;
using System.Diagnostics;
using System.Text.Json;
using GigaPath.Runtime;
using GigaPath.Weights;

namespace GigaPath.Pipeline;

/// <summary>What happened to one slide of a cohort run.</summary>
public enum SlideStatus
{
    /// <summary>Computed in this run.</summary>
    Done,

    /// <summary>Already complete (manifest present and consistent): left alone.</summary>
    Skipped,

    /// <summary>Failed in this run; recorded in <c>failed/&lt;id&gt;.json</c>.</summary>
    Failed,

    /// <summary>Failed in an earlier run and not retried (<see cref="CohortOptions.RetryFailed"/> not set).</summary>
    PreviouslyFailed,

    /// <summary>Another live process holds the slide's lock.</summary>
    Busy,

    /// <summary>Complete outputs made with other settings exist: left as they are (<see cref="CohortOptions.Force"/> recomputes them).</summary>
    SettingsChanged,
}

/// <summary>What happened to one slide of a cohort run, and for a computed slide how many tiles it took and how long.</summary>
public sealed class SlideOutcome
{
    internal SlideOutcome(SlideJob job, SlideStatus status, string? message = null, int tileCount = 0, TimeSpan elapsed = default)
    {
        Job = job;
        Status = status;
        Message = message;
        TileCount = tileCount;
        Elapsed = elapsed;
    }

    /// <summary>The slide.</summary>
    public SlideJob Job { get; }

    /// <summary>What happened to it.</summary>
    public SlideStatus Status { get; }

    /// <summary>Why it was not computed (the error, the lock's holder, what settings differ); null when it was.</summary>
    public string? Message { get; }

    /// <summary>Tiles embedded (0 unless <see cref="SlideStatus.Done"/>).</summary>
    public int TileCount { get; }

    /// <summary>Time spent on the slide in this run.</summary>
    public TimeSpan Elapsed { get; }

    /// <summary>Tiles per second over <see cref="Elapsed"/> (0 when nothing was computed).</summary>
    public double TilesPerSecond => Elapsed > TimeSpan.Zero ? TileCount / Elapsed.TotalSeconds : 0;
}

/// <summary>The end of a cohort run: one outcome per slide, and the throughput over the slides computed.</summary>
public sealed class CohortSummary
{
    internal CohortSummary(IReadOnlyList<SlideOutcome> outcomes, TimeSpan elapsed)
    {
        Outcomes = outcomes;
        Elapsed = elapsed;
    }

    /// <summary>One outcome per slide of the run (of its shard), in slide-id order.</summary>
    public IReadOnlyList<SlideOutcome> Outcomes { get; }

    /// <summary>Wall time of the run.</summary>
    public TimeSpan Elapsed { get; }

    /// <summary>How many slides ended with <paramref name="status"/>.</summary>
    /// <param name="status">The status counted.</param>
    public int Count(SlideStatus status) => Outcomes.Count(o => o.Status == status);

    /// <summary>Tiles embedded over the slides computed in this run.</summary>
    public int TilesComputed => Outcomes.Where(o => o.Status == SlideStatus.Done).Sum(o => o.TileCount);

    /// <summary>Tiles per second over the time spent on the slides computed.</summary>
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
    public bool HasFailures => Outcomes.Any(o => o.Status is SlideStatus.Failed or SlideStatus.PreviouslyFailed or SlideStatus.SettingsChanged);
}

/// <summary>Receives a cohort run's progress; calls come, in order, from the thread running the cohort.</summary>
public interface ICohortObserver
{
    /// <summary>A slide is about to be checked and, unless complete, computed.</summary>
    /// <param name="job">The slide.</param>
    /// <param name="position">Counts from 1 over the <paramref name="count"/> slides of this run (shard).</param>
    /// <param name="count">Slides in this run (shard).</param>
    void SlideStarted(SlideJob job, int position, int count);

    /// <summary>Tiles of <paramref name="job"/> embedded so far.</summary>
    /// <param name="job">The slide being computed.</param>
    /// <param name="progress">Tiles done out of the slide's total, and the time so far.</param>
    void TilesProgress(SlideJob job, TileProgress progress);

    /// <summary>A slide is finished, whatever its outcome.</summary>
    /// <param name="outcome">What happened to it.</param>
    /// <param name="position">Counts from 1 over the <paramref name="count"/> slides of this run (shard).</param>
    /// <param name="count">Slides in this run (shard).</param>
    void SlideFinished(SlideOutcome outcome, int position, int count);
}

/// <summary>Options of a cohort run besides the pipeline's: where outputs go, what is redone, which shard.</summary>
public sealed record CohortOptions
{
    /// <summary>
    /// The output folder: per slide <c>&lt;id&gt;.h5</c>, <c>&lt;id&gt;.slide.safetensors</c> (with a slide encoder),
    /// <c>&lt;id&gt;.thumbnail.png</c> and <c>&lt;id&gt;.manifest.json</c>, written last.
    /// </summary>
    public required string OutputDirectory { get; init; }

    /// <summary>Recompute slides that failed in an earlier run (otherwise they are reported and left).</summary>
    public bool RetryFailed { get; init; }

    /// <summary>
    /// Recompute slides whose complete outputs were made with other settings (otherwise they are left as they are
    /// and reported). Their old outputs are replaced only once the new ones are complete.
    /// </summary>
    public bool Force { get; init; }

    /// <summary>Process only this shard of the slides; null for all of them.</summary>
    public ShardSpec? Shard { get; init; }

    /// <summary>The folder of the failure records, <c>failed/&lt;id&gt;.json</c>, under <see cref="OutputDirectory"/>.</summary>
    public string FailureRecordDirectory => Path.Combine(Path.GetFullPath(OutputDirectory), SlideOutputs.FailedFolder);
}

/// <summary>
/// Runs the whole-slide pipeline over a cohort into one output folder, crash-safe and resumable: each slide is opened,
/// tiled (<see cref="PipelineOptions.Tiling"/>), its tiles embedded and, with a slide encoder, the slide embedded; its
/// outputs are each written atomically and its manifest last. A slide whose manifest is present and consistent is
/// skipped; each slide is taken under its lock, so several processes may share a folder; a failing slide is recorded in
/// <c>failed/&lt;id&gt;.json</c> and the others continue; cancellation stops after cleaning up the slide in progress,
/// and a rerun carries on from there. The encoders stay the caller's to dispose.
/// </summary>
public sealed class CohortRunner
{
    private readonly SlidePipeline pipeline;
    private readonly CohortOptions options;

    /// <summary>A runner for <paramref name="tileEncoder"/> and, when given, <paramref name="slideEncoder"/>.</summary>
    /// <param name="tileEncoder">Embeds the tiles.</param>
    /// <param name="slideEncoder">Embeds each slide from its tiles (Prov-GigaPath's tile encoder only); null for tile features only.</param>
    /// <param name="pipelineOptions">Tiling, batching, pooling.</param>
    /// <param name="options">Output folder, what is redone, which shard.</param>
    /// <exception cref="GigaPathException">The options are out of range or the encoders do not fit together.</exception>
    public CohortRunner(TileEncoder tileEncoder, SlideEncoder? slideEncoder, PipelineOptions pipelineOptions, CohortOptions options)
        : this(new SlidePipeline(tileEncoder ?? throw new ArgumentNullException(nameof(tileEncoder)), slideEncoder,
            pipelineOptions ?? throw new ArgumentNullException(nameof(pipelineOptions))), options)
    {
    }

    internal CohortRunner(SlidePipeline pipeline, CohortOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        ArgumentException.ThrowIfNullOrWhiteSpace(options.OutputDirectory);
        this.pipeline = pipeline;
        this.options = options;
    }

    /// <summary>
    /// Runs <paramref name="jobs"/> (of <see cref="CohortOptions.Shard"/> only, when set) in slide-id order. Slides that
    /// fail are reported in the summary, not thrown; an output folder that cannot be created throws
    /// <see cref="GigaPathException"/>, and cancellation throws <see cref="OperationCanceledException"/> once the slide in
    /// progress is cleaned up.
    /// </summary>
    /// <param name="jobs">The cohort's slides (<see cref="CohortInputs.Expand"/>).</param>
    /// <param name="observer">Told of each slide's start, tile progress and outcome, on the running thread; may be null.</param>
    /// <param name="cancellationToken">Stops the run within one block of the model.</param>
    public CohortSummary Run(IReadOnlyList<SlideJob> jobs, ICohortObserver? observer = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(jobs);
        var clock = Stopwatch.StartNew();
        var mine = options.Shard is { } shard ? CohortInputs.Shard(jobs, shard) : jobs.OrderBy(j => j.SlideId, StringComparer.Ordinal).ToList();
        PrepareOutputFolder();
        var outcomes = new List<SlideOutcome>();
        for (int i = 0; i < mine.Count; i++)
        {
            cancellationToken.ThrowIfCancellationRequested();
            observer?.SlideStarted(mine[i], i + 1, mine.Count);
            var outcome = RunOne(mine[i], observer, cancellationToken);
            outcomes.Add(outcome);
            observer?.SlideFinished(outcome, i + 1, mine.Count);
        }
        return new CohortSummary(outcomes, clock.Elapsed);
    }

    /// <summary><see cref="Run"/> on the thread pool (a cohort takes hours); the observer is called from that thread.</summary>
    /// <param name="jobs">The cohort's slides (<see cref="CohortInputs.Expand"/>).</param>
    /// <param name="observer">Told of each slide's start, tile progress and outcome; may be null.</param>
    /// <param name="cancellationToken">Stops the run within one block of the model.</param>
    public Task<CohortSummary> RunAsync(IReadOnlyList<SlideJob> jobs, ICohortObserver? observer = null, CancellationToken cancellationToken = default) =>
        Task.Run(() => Run(jobs, observer, cancellationToken), cancellationToken);

    /// <summary>
    /// Creates the output folder and its lock folder up front: a read-only or missing file system is one clear error
    /// before any slide starts, not a failure per slide.
    /// </summary>
    private void PrepareOutputFolder()
    {
        try
        {
            Directory.CreateDirectory(options.OutputDirectory);
            Directory.CreateDirectory(Path.Combine(options.OutputDirectory, SlideOutputs.LockFolder));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new GigaPathException($"{OptionNames.OutputDirectory} {options.OutputDirectory}: cannot create the output folder or its {SlideOutputs.LockFolder} folder ({e.Message}); choose a writable folder", e);
        }
    }

    private SlideOutcome RunOne(SlideJob job, ICohortObserver? observer, CancellationToken cancellation)
    {
        var outputs = new SlideOutputs(options.OutputDirectory, job.SlideId) { HasSlideEmbedding = pipeline.EncodesSlides };
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
        $"Rerun with {OptionNames.Force} to recompute them (the old outputs are replaced only once the new ones are complete), or use another {OptionNames.OutputDirectory}";

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
