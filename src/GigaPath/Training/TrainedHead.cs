using GigaPath.Models.Heads;

namespace GigaPath.Training;

/// <summary>One epoch's numbers (the linear probe has one "epoch": its full-batch fit).</summary>
internal sealed record EpochRecord(int Epoch, double TrainLoss, double? ValidationLoss, double? ValidationAuroc, double LearningRate);

/// <summary>A head fitted on one fold, with its training history and the epoch whose weights it holds.</summary>
internal sealed record TrainedHead(SlideHead Head, IReadOnlyList<EpochRecord> History, int SelectedEpoch, string Selection)
{
    /// <summary>Tiles that went through training steps (forward, backward, update), summed over steps; 0 for slide-vector heads.</summary>
    public long TrainingTiles { get; init; }

    /// <summary>Seconds spent in those steps (reading slides and validation excluded).</summary>
    public double TrainingSeconds { get; init; }
}

/// <summary>
/// Fits a head on one fold's training slides. <c>createHead</c> builds the initial head (random, or holding a
/// pretrained slide encoder); the generator is seeded before it is called.
/// </summary>
internal interface IHeadTrainer
{
    TrainedHead Train(Cohort cohort, Fold fold, HeadConfig config, Func<HeadConfig, SlideHead> createHead, TrainingOptions options, TextWriter log, CancellationToken cancellation);
}
