using GigaPath.Models.Heads;
using GigaPath.Runtime;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace GigaPath.Training;

/// <summary>
/// Trains a head that reads one slide at a time (attention pooling, slide encoder + classifier) the way the reference
/// fine-tunes: batch of one slide, gradient accumulation over <c>accumulate</c> slides, AdamW with per-group learning-rate
/// scales (layer-wise decay) and no weight decay on 1-D parameters, per-iteration warm-up + cosine schedule. The loss of
/// each slide is multiplied by its class weight (with one slide per batch PyTorch's weighted mean would cancel the
/// weight). After each epoch the validation slides are scored; with model_select = val the weights of the best epoch
/// (highest validation AUROC, ties to the lower loss) are kept and training stops after <c>patience</c> epochs without
/// improvement. A partial accumulation at the end of an epoch is applied rather than carried over.
/// </summary>
internal sealed class SequenceHeadTrainer : IHeadTrainer
{
    public TrainedHead Train(Cohort cohort, Fold fold, HeadConfig config, Func<HeadConfig, SlideHead> createHead, TrainingOptions options, TextWriter log, CancellationToken cancellation)
    {
        var device = DeviceSelection.ParseDevice(options.Device);
        var dtype = DeviceSelection.ParseDType(options.DType, device);
        DeviceSelection.EnsureSupported(device, dtype);
        int c = config.NumClasses;
        var classes = cohort.ClassOf;

        manual_seed(SeedFor(options.Seed, fold.Index));
        using var replica = new TrainingReplica(config, createHead, device, dtype);
        var head = replica.Master;
        var groups = new List<(AdamW.ParamGroup Group, double Scale)>();
        foreach (var g in head.ParameterGroups(options.LayerDecay).GroupBy(p => (p.LrScale, p.Decay)))
        {
            var group = new AdamW.ParamGroup(g.Select(p => p.Parameter), lr: options.EffectiveLr * g.Key.LrScale,
                weight_decay: g.Key.Decay ? options.WeightDecay : 0.0);
            groups.Add((group, g.Key.LrScale));
        }
        if (groups.Count == 0) throw new GigaPathException("nothing to train: every parameter of the head is frozen");
        using var optimizer = optim.AdamW(groups.Select(g => g.Group), lr: options.EffectiveLr);

        var weights = ClassWeights.Compute(fold.Train.Select(i => classes[i]), c, options.ClassWeights);
        using var weightTensor = tensor(weights.Select(w => (float)w).ToArray()).to(device);
        var history = new List<EpochRecord>();
        Dictionary<string, Tensor>? best = null;
        (double Auroc, double Loss) bestScore = (double.NegativeInfinity, double.PositiveInfinity);
        int bestEpoch = options.Epochs - 1, sinceBest = 0;
        bool selectOnValidation = options.ModelSelect == "val" && fold.Validation.Length > 0;
        int n = fold.Train.Length;
        long trainedTiles = 0;
        var stepClock = new System.Diagnostics.Stopwatch();

        for (int epoch = 0; epoch < options.Epochs; epoch++)
        {
            replica.SetTraining(true);
            var order = new DeterministicRandom(options.Seed, 3, fold.Index, epoch).Permutation(n);
            double lossSum = 0, lr = options.EffectiveLr;
            optimizer.zero_grad();
            for (int b = 0; b < n; b++)
            {
                if (b % options.Accumulate == 0)
                {
                    lr = LearningRateSchedule.At(epoch + (double)b / n, options.EffectiveLr, options.MinLr, options.WarmupEpochs, options.Epochs, options.LrScheduler);
                    foreach (var (group, scale) in groups) group.LearningRate = lr * scale;
                    replica.PushWeights();
                }
                cancellation.ThrowIfCancellationRequested();
                int slide = fold.Train[order[b]];
                // The previous slide's step (and validation, the optimizer's update) left its short-lived buffers as
                // free heap scattered between the weights, gradients and optimizer state; handing it back before each
                // slide keeps the resident size at one step's need (NativeAllocator keeps up to 1 GiB otherwise).
                // One trim and one full collection per slide, against a step of seconds to minutes.
                NativeAllocator.ReleaseFreeMemory();
                using (var scope = NewDisposeScope())
                {
                    var shuffle = options.ShuffleTiles ? new DeterministicRandom(options.Seed, 4, fold.Index, epoch, b) : null;
                    var input = SlideInputs.ToTensors(cohort.Bag(slide), config, device, dtype, options.MaxTiles, shuffle);
                    // The slide's managed arrays (61 MB at 10k tiles) once the tensors no longer need them, and the
                    // previous slide's.
                    GC.Collect();
                    stepClock.Start();
                    trainedTiles += input.Features?.shape[0] ?? 0;
                    lossSum += Backward(replica, input, classes[slide], weightTensor[classes[slide]] / options.Accumulate) * options.Accumulate;
                }
                if ((b + 1) % options.Accumulate == 0 || b == n - 1)
                {
                    optimizer.step();
                    optimizer.zero_grad();
                }
                stepClock.Stop();
            }
            replica.PushWeights();

            double? valLoss = null, valAuroc = null;
            if (fold.Validation.Length > 0)
            {
                (valLoss, valAuroc) = Validate(replica.Work, cohort, fold.Validation, weights, device, dtype);
            }
            history.Add(new EpochRecord(epoch, lossSum / n, valLoss, valAuroc, lr));
            log.WriteLine($"  fold {fold.Index} epoch {epoch}: train loss {lossSum / n:F4}" +
                          (valLoss is null ? "" : $", val loss {valLoss:F4}, val AUROC {Format(valAuroc)}") + $", lr {lr:E2}");

            if (!selectOnValidation) continue;
            double auroc = valAuroc ?? double.NegativeInfinity;
            if (auroc > bestScore.Auroc || (auroc == bestScore.Auroc && valLoss!.Value < bestScore.Loss))
            {
                bestScore = (auroc, valLoss!.Value);
                bestEpoch = epoch;
                sinceBest = 0;
                DisposeAll(best);
                best = Snapshot(head);
            }
            else if (options.Patience > 0 && ++sinceBest >= options.Patience)
            {
                log.WriteLine($"  fold {fold.Index}: no validation improvement for {options.Patience} epochs, stopping");
                break;
            }
        }

        if (best is not null)
        {
            using var _ = no_grad();
            foreach (var (name, t) in head.state_dict()) t.copy_(best[name]);
            DisposeAll(best);
        }
        head.eval();
        var selection = selectOnValidation ? $"best validation epoch {bestEpoch}" : $"last epoch {history.Count - 1}";
        if (!selectOnValidation) bestEpoch = history.Count - 1;
        return new TrainedHead(head, history, bestEpoch, selection) { TrainingTiles = trainedTiles, TrainingSeconds = stepClock.Elapsed.TotalSeconds };
    }

    /// <summary>
    /// Forward and backward of one slide: cross-entropy against <paramref name="label"/> times <paramref name="lossScale"/>
    /// (class weight / accumulation), gradients added into the master weights. Returns the scaled loss.
    /// </summary>
    internal static float Backward(TrainingReplica replica, SlideTensors input, long label, Tensor lossScale)
    {
        using var scope = NewDisposeScope();
        var (_, loss) = TrainingStep.Backward(replica.Work, input, label, lossScale);
        replica.AccumulateGradients();
        return loss.item<float>();
    }

    /// <summary>Fold k of seed s starts from its own fixed generator state, so folds do not depend on one another.</summary>
    public static long SeedFor(int seed, int fold) => seed * 1_000_003L + fold;

    private static (double Loss, double? Auroc) Validate(SlideHead head, Cohort cohort, int[] slides, double[] weights, Device device, ScalarType dtype)
    {
        var labels = new List<int>();
        var probs = new List<double[]>();
        double weighted = 0, weightSum = 0;
        foreach (var i in slides)
        {
            var p = HeadEvaluator.Predict(head, cohort.Bag(i), device, dtype).ProbabilityValues;
            int y = cohort.Slides[i].Row.ClassIndex;
            double w = weights[y] > 0 ? weights[y] : 1;
            weighted += w * -Math.Log(Math.Max(p[y], 1e-12));
            weightSum += w;
            labels.Add(y);
            probs.Add(p);
        }
        double? auroc = labels.Distinct().Count() == probs[0].Length ? Metrics.Auroc(labels, probs) : null;
        return (weighted / weightSum, auroc);
    }

    private static Dictionary<string, Tensor> Snapshot(nn.Module module)
    {
        using var _ = no_grad();
        return module.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone().DetachFromDisposeScope());
    }

    private static void DisposeAll(Dictionary<string, Tensor>? tensors)
    {
        if (tensors is null) return;
        foreach (var t in tensors.Values) t.Dispose();
    }

    private static string Format(double? v) => v is null ? "n/a" : v.Value.ToString("F4", System.Globalization.CultureInfo.InvariantCulture);
}
