using GigaPath.Models.Heads;
using GigaPath.Runtime;
using TorchSharp;

namespace GigaPath.Training;

/// <summary>Inputs of one cross-validation run (<see cref="CrossValidation.RunAsync"/>).</summary>
/// <param name="LabelsPath">CSV with columns <c>slide_id,label</c> and optionally <c>fold</c>.</param>
/// <param name="FeaturesDirectory">Folder of <c>&lt;slide_id&gt;.safetensors</c> or <c>.h5</c> tile-feature files.</param>
/// <param name="OutputDirectory">Where the report, predictions and each fold's head are written.</param>
/// <param name="Options">The head and its settings.</param>
/// <param name="SlideModel">The slide encoder folder (config.json and weights): required for <see cref="HeadKind.Slide"/>;
/// with <see cref="HeadKind.Abmil"/>, its contextual tile outputs are pooled.</param>
public sealed record CrossValidationRequest(string LabelsPath, string FeaturesDirectory, string OutputDirectory, TrainingOptions Options, string? SlideModel = null);

/// <summary>
/// k-fold cross-validation of one head: loads and checks the cohort, plans the folds (all before any training), trains
/// one head per fold, scores its test fold, saves <c>fold_k/head.safetensors</c> + <c>head.json</c>, and writes the
/// report (<c>report.json</c>, <c>report.md</c>, <c>predictions.csv</c>). Same inputs and seed give the same numbers.
/// </summary>
public static class CrossValidation
{
    /// <summary>
    /// Runs the cross-validation on the thread pool. <paramref name="progress"/> hears a line per fold and epoch (what
    /// <c>gigapath finetune</c> prints); cancellation is checked before each slide's training step and between folds.
    /// </summary>
    /// <param name="request">The cohort, the options and where to write.</param>
    /// <param name="progress">Told each progress line; null for none.</param>
    /// <param name="cancellationToken">Stops the run; what is written stays, the report is not.</param>
    /// <returns>The metrics over folds and where the report and heads are.</returns>
    /// <exception cref="GigaPathException">Bad labels, feature files or options; the message names the file or setting.</exception>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    public static Task<CrossValidationResult> RunAsync(CrossValidationRequest request, IProgress<string>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return Task.Run(() =>
        {
            using var log = new ProgressWriter(progress);
            return new CrossValidationResult(Run(request, log, cancellationToken), request.OutputDirectory);
        }, cancellationToken);
    }

    internal static CrossValidationReport Run(CrossValidationRequest request, TextWriter? log = null, CancellationToken cancellation = default)
    {
        log ??= TextWriter.Null;
        int previousThreads = torch.get_num_threads();
        int threads = request.Options.Threads > 0 ? request.Options.Threads : request.Options.Deterministic ? 1 : previousThreads;
        torch.set_num_threads(threads);
        try
        {
            return RunWithThreads(request, log, cancellation);
        }
        finally
        {
            torch.set_num_threads(previousThreads);
        }
    }

    private static CrossValidationReport RunWithThreads(CrossValidationRequest request, TextWriter log, CancellationToken cancellation)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        long trainingTiles = 0;
        double trainingSeconds = 0;
        var options = request.Options;
        var device = DeviceSelection.ParseDevice(options.Device);
        var dtype = DeviceSelection.ParseDType(options.DType, device);
        DeviceSelection.EnsureSupported(device, dtype);

        var cohort = Cohort.Load(request.LabelsPath, request.FeaturesDirectory, options.Classes);
        // A slide-encoder step takes seconds to minutes; re-reading its slide takes milliseconds. Cached features would
        // sit beside the step's own memory (the budget is 4 GiB: more than a whole 10k-tile step needs), so none are.
        if (options.Head == HeadKind.Slide) cohort.CacheBudgetBytes = 0;
        var folds = cohort.PlanFolds(options.Folds, options.Head == HeadKind.Linear ? 0 : options.ValFraction, options.Seed);
        bool graded = options.Graded ?? cohort.Labels.Graded;
        var (config, createHead) = HeadSetup.Prepare(cohort, options, request.SlideModel, graded, out var contextual);
        using var contextualScope = contextual;
        cohort.Level0TileSize = options.PatchSizeLevel0;
        if (contextual is not null) cohort.Transform = contextual.Apply;
        IHeadTrainer trainer = options.Head == HeadKind.Linear ? new LinearProbeTrainer() : new SequenceHeadTrainer();
        Directory.CreateDirectory(request.OutputDirectory);
        // Weights, gradients and optimizer state live for a whole fold among a step's short-lived buffers: large blocks
        // get mappings of their own so that the two do not fragment one heap (NativeAllocator's remarks). Each step
        // (TrainingStep) asks for the same; the scope here also covers the optimizer's state and validation.
        using var largeBlocks = NativeAllocator.MapLargeBlocks();

        log.WriteLine($"{cohort.Count} slides, {cohort.Labels.Classes.Count} classes ({string.Join(", ", cohort.Labels.Classes)}), " +
                      $"{folds.Count} folds, head {options.Head.ToString().ToLowerInvariant()}, input width {config.InputDim}, {torch.get_num_threads()} thread(s)");
        var foldReports = new List<FoldReport>();
        var predictions = new List<OutOfFoldPrediction>();
        foreach (var fold in folds)
        {
            cancellation.ThrowIfCancellationRequested();
            var trained = trainer.Train(cohort, fold, config, createHead, options, log, cancellation);
            trainingTiles += trained.TrainingTiles;
            trainingSeconds += trained.TrainingSeconds;
            using var head = trained.Head;
            var labels = new List<int>();
            var probs = new List<double[]>();
            foreach (var i in fold.Test)
            {
                var p = HeadEvaluator.Predict(head, cohort.Bag(i), device, torch.ScalarType.Float32).ProbabilityValues;
                var row = cohort.Slides[i].Row;
                labels.Add(row.ClassIndex);
                probs.Add(p);
                predictions.Add(new OutOfFoldPrediction(row.SlideId, fold.Index, row.Label, row.ClassIndex, Metrics.ArgMax([p])[0], p));
            }
            var m = ClassificationMetrics.Compute(labels, probs, config.NumClasses, graded);
            var checkpoint = Path.Combine($"fold_{fold.Index}", HeadCheckpoint.DefaultFileName);
            HeadCheckpoint.Save(head, Path.Combine(request.OutputDirectory, checkpoint));
            foldReports.Add(new FoldReport(fold.Index, fold.Train.Length, fold.Validation.Length, fold.Test.Length,
                m.Auroc, m.BalancedAccuracy, m.WeightedF1, m.Accuracy, m.QuadraticKappa, m.ConfusionMatrix,
                trained.SelectedEpoch, trained.Selection, trained.History.Count, checkpoint, trained.History));
            log.WriteLine($"fold {fold.Index}: test AUROC {m.Auroc:F4}, balanced accuracy {m.BalancedAccuracy:F4}, weighted F1 {m.WeightedF1:F4}");
            // Managed handles of the fold's parameters (optimizer groups, enumerations) keep the disposed head's weights
            // and gradients alive until they are finalized; the next fold should not start beside them.
            GC.Collect();
            GC.WaitForPendingFinalizers();
            NativeAllocator.ReleaseFreeMemory();
        }

        var pooled = ClassificationMetrics.Compute(predictions.Select(p => p.ClassIndex).ToList(), predictions.Select(p => p.Probabilities).ToList(), config.NumClasses, graded);
        var report = new CrossValidationReport(
            options.TaskName, options.Head.ToString().ToLowerInvariant(), cohort.Labels.Classes, graded, cohort.Count, options.Seed,
            MeanStd.Of(foldReports.Select(f => f.Auroc)),
            MeanStd.Of(foldReports.Select(f => f.BalancedAccuracy)),
            MeanStd.Of(foldReports.Select(f => f.WeightedF1)),
            MeanStd.Of(foldReports.Select(f => f.Accuracy)),
            graded && foldReports.All(f => f.QuadraticKappa is not null) ? MeanStd.Of(foldReports.Select(f => f.QuadraticKappa!.Value)) : null,
            pooled, foldReports, options.Describe(), Provenance.Current.ToString())
        {
            Predictions = predictions,
            Cost = new RunCost(clock.Elapsed.TotalSeconds, trainingTiles, trainingSeconds, ProcessMemory.PeakResidentBytes),
        };
        ReportWriter.WriteAll(report, request.OutputDirectory);
        log.WriteLine($"AUROC {report.Auroc.Mean:F4} ± {report.Auroc.Std:F4}, balanced accuracy {report.BalancedAccuracy.Mean:F4} ± {report.BalancedAccuracy.Std:F4}");
        return report;
    }
}
