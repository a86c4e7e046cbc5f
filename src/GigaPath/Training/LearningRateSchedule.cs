namespace GigaPath.Training;

/// <summary>
/// The reference's per-iteration schedule (MAE's <c>adjust_learning_rate</c>): linear warm-up from 0 over
/// <c>warmup_epochs</c>, then a half-cycle cosine from the peak down to <c>min_lr</c> at the last epoch. Epoch is
/// fractional: epoch + batch / batches_per_epoch.
/// </summary>
internal static class LearningRateSchedule
{
    public static double At(double epoch, double peak, double min, double warmupEpochs, int epochs, string scheduler)
    {
        if (scheduler == "fixed") return peak;
        if (epoch < warmupEpochs) return peak * epoch / warmupEpochs;
        double span = epochs - warmupEpochs;
        if (span <= 0) return peak;
        return min + (peak - min) * 0.5 * (1 + Math.Cos(Math.PI * (epoch - warmupEpochs) / span));
    }
}
