using GigaPath.Models.Heads;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Training;

/// <summary>
/// Fits the linear probe full-batch with L-BFGS on the fold's training and validation slides together (a convex fit has
/// no epoch to select). Objective: class-weighted mean cross-entropy + ||W||² / (2 C n), the bias unpenalised — the
/// objective of scikit-learn's multinomial <c>LogisticRegression(C)</c> divided by C·n. Runs in float32 (tiny).
/// </summary>
internal sealed class LinearProbeTrainer : IHeadTrainer
{
    public TrainedHead Train(Cohort cohort, Fold fold, HeadConfig config, Func<HeadConfig, SlideHead> createHead, TrainingOptions options, TextWriter log, CancellationToken cancellation)
    {
        cancellation.ThrowIfCancellationRequested();
        var slides = fold.Train.Concat(fold.Validation).ToArray();
        var classes = cohort.ClassOf;
        manual_seed(SequenceHeadTrainer.SeedFor(options.Seed, fold.Index));
        var probe = (LinearProbe)createHead(config);
        probe.train();

        using var scope = NewDisposeScope();
        var rows = slides.Select(i => SlideInputs.SlideVector(cohort.Bag(i), config)).ToArray();
        var x = tensor(rows.SelectMany(r => r).ToArray(), [rows.Length, config.InputDim]);
        var y = tensor(slides.Select(i => (long)classes[i]).ToArray());
        var weights = ClassWeights.Compute(slides.Select(i => classes[i]), config.NumClasses, options.ClassWeights);
        var sampleWeight = tensor(slides.Select(i => (float)weights[classes[i]]).ToArray());
        if (options.Standardize) probe.FitStandardization(x);
        using (no_grad())
        {
            probe.Classifier.weight!.zero_();
            probe.Classifier.bias!.zero_();
        }

        double penalty = 1.0 / (2 * options.C * slides.Length);
        using var optimizer = optim.LBFGS(probe.Classifier.parameters(), lr: 1, max_iter: options.MaxIter, tolerange_grad: 1e-7,
            tolerance_change: 1e-12, history_size: 20);
        Tensor Objective()
        {
            optimizer.zero_grad();
            var ce = nn.functional.cross_entropy(probe.Logits(x), y, reduction: nn.Reduction.None);
            var loss = (ce * sampleWeight).mean() + penalty * probe.Classifier.weight!.pow(2).sum();
            loss.backward();
            return loss;
        }
        optimizer.step(Objective);
        double final;
        using (no_grad())
        {
            var ce = nn.functional.cross_entropy(probe.Logits(x), y, reduction: nn.Reduction.None);
            final = ((ce * sampleWeight).mean() + penalty * probe.Classifier.weight!.pow(2).sum()).item<float>();
        }
        if (!double.IsFinite(final))
            throw new GigaPathException($"fold {fold.Index}: the linear probe diverged (objective {final}); try standardize: true or a smaller C");
        log.WriteLine($"  fold {fold.Index}: linear probe on {slides.Length} slides, objective {final:F5}");
        probe.eval();
        return new TrainedHead(probe, [new EpochRecord(0, final, null, null, 1.0)], 0, "full-batch L-BFGS fit");
    }
}
