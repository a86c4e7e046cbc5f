using System.Globalization;
using GigaPath.Pipeline;
using GigaPath.Models.Tile;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace GigaPath.Cli.Progress;

/// <summary>Shows a cohort run: live progress bars on a terminal, plain log lines on stderr otherwise.</summary>
internal static class CohortConsole
{
    /// <summary>Bars only when both streams are an interactive terminal (not redirected, not a CI log).</summary>
    public static bool UseBars(string mode) => mode switch
    {
        "bars" => true,
        "lines" => false,
        "auto" => !Console.IsOutputRedirected && !Console.IsErrorRedirected && AnsiConsole.Profile.Capabilities.Interactive,
        _ => throw new GigaPathException($"--progress '{mode}' is not supported (use auto, bars or lines)"),
    };

    /// <summary>Runs <paramref name="run"/> with an observer of the chosen kind.</summary>
    public static CohortSummary Run(bool bars, Func<ICohortObserver, CohortSummary> run)
    {
        if (!bars) return run(new LineObserver(Console.Error));
        CohortSummary? summary = null;
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RateColumn(), new RemainingTimeColumn(), new SpinnerColumn())
            .Start(ctx => summary = run(new BarObserver(ctx)));
        return summary!;
    }

    public static void PrintSummary(CohortSummary summary, CohortOptions cohort, TextWriter to)
    {
        var outDir = cohort.OutputDirectory;
        to.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"slides: {summary.Count(SlideStatus.Done)} done, {summary.Count(SlideStatus.Skipped)} skipped (already complete), " +
            $"{summary.Count(SlideStatus.Failed)} failed, {summary.Count(SlideStatus.PreviouslyFailed)} failed earlier (not retried), " +
            $"{summary.Count(SlideStatus.Busy)} busy (locked by another process), " +
            $"{summary.Count(SlideStatus.SettingsChanged)} kept (outputs made with other settings; --force recomputes)"));
        to.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"tiles: {summary.TilesComputed} embedded, {summary.TilesPerSecond:F2} tiles/s end to end; {summary.Elapsed.TotalSeconds:F1} s in all"));
        foreach (var o in summary.Outcomes.Where(o => o.Status is SlideStatus.Failed or SlideStatus.PreviouslyFailed or SlideStatus.Busy or SlideStatus.SettingsChanged))
            to.WriteLine($"  {Label(o.Status)} {o.Job.SlideId}: {CliRunner.Describe(o.Message)}");
        if (summary.Count(SlideStatus.Failed) > 0)
            to.WriteLine($"failure records: {cohort.FailureRecordDirectory}/ (rerun with --retry-failed to redo them)");
        to.WriteLine($"outputs: {Path.GetFullPath(outDir)}");
    }

    private static string Label(SlideStatus s) => s switch
    {
        SlideStatus.Failed => "FAILED",
        SlideStatus.PreviouslyFailed => "failed earlier",
        SlideStatus.Busy => "busy",
        SlideStatus.SettingsChanged => "kept (other settings)",
        _ => s.ToString().ToLowerInvariant(),
    };

    private static string Describe(SlideOutcome o) => o.Status switch
    {
        SlideStatus.Done => string.Create(CultureInfo.InvariantCulture, $"done: {o.TileCount} tiles in {o.Elapsed.TotalSeconds:F1} s ({o.TilesPerSecond:F2} tiles/s)"),
        SlideStatus.Skipped => "skipped: already complete",
        _ => $"{Label(o.Status)}: {CliRunner.Describe(o.Message)}",
    };

    /// <summary>Log lines for files and CI logs: start and end of each slide, tile progress at most every 10 s.</summary>
    private sealed class LineObserver(TextWriter to) : ICohortObserver
    {
        private static readonly TimeSpan Every = TimeSpan.FromSeconds(10);
        private TimeSpan _lastReport;

        public void SlideStarted(SlideJob job, int position, int count)
        {
            _lastReport = TimeSpan.Zero;
            to.WriteLine($"[{position}/{count}] {job.SlideId}: {job.Path}");
        }

        public void TilesProgress(SlideJob job, TileProgress p)
        {
            if (p.Done < p.Total && p.Elapsed - _lastReport < Every) return;
            _lastReport = p.Elapsed;
            double eta = p.TilesPerSecond > 0 ? (p.Total - p.Done) / p.TilesPerSecond : 0;
            to.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"    {job.SlideId}: {p.Done}/{p.Total} tiles, {p.TilesPerSecond:F2} tiles/s, ETA {eta:F0} s"));
        }

        public void SlideFinished(SlideOutcome outcome, int position, int count) =>
            to.WriteLine($"[{position}/{count}] {outcome.Job.SlideId}: {Describe(outcome)}");
    }

    /// <summary>One bar for the cohort (slides) and one per slide (tiles), with rate and ETA.</summary>
    private sealed class BarObserver(ProgressContext ctx) : ICohortObserver
    {
        private ProgressTask? _cohort;
        private ProgressTask? _slide;

        public void SlideStarted(SlideJob job, int position, int count)
        {
            _cohort ??= ctx.AddTask("slides", maxValue: count);
            _slide = ctx.AddTask(Markup.Escape(job.SlideId), maxValue: 1);
            _slide.IsIndeterminate = true;
        }

        public void TilesProgress(SlideJob job, TileProgress p)
        {
            if (_slide is null) return;
            _slide.IsIndeterminate = false;
            _slide.MaxValue = p.Total;
            _slide.Value = p.Done;
        }

        public void SlideFinished(SlideOutcome outcome, int position, int count)
        {
            if (_slide is not null)
            {
                _slide.Description = Markup.Escape(outcome.Job.SlideId) + outcome.Status switch
                {
                    SlideStatus.Done => " [green]done[/]",
                    SlideStatus.Skipped => " [grey]skipped[/]",
                    SlideStatus.Failed => " [red]failed[/]",
                    _ => $" [yellow]{Label(outcome.Status)}[/]",
                };
                _slide.IsIndeterminate = false;
                _slide.Value = _slide.MaxValue;
                _slide.StopTask();
            }
            _cohort?.Increment(1);
        }
    }

    /// <summary>Items per second (tiles for a slide, slides for the cohort).</summary>
    private sealed class RateColumn : ProgressColumn
    {
        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime) =>
            new Text(task.Speed is { } s ? string.Create(CultureInfo.InvariantCulture, $"{s,7:F2}/s") : "       ", new Style(Color.Grey));
    }
}
