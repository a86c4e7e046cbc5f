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

    /// <summary>
    /// Layer-wise decay as the reference's <c>get_layer_id</c> assigns it: with L = depth + 1, cls_token is layer 0,
    /// encoder layer i is layer i + 1, everything else layer L; the scale is decay^(L - layer). The reference tests
    /// <c>name.startswith('patch_embed')</c> on names that begin with <c>slide_encoder.</c>, so the patch embedding
    /// falls through to layer L (full rate); that is reproduced here so results match the published recipe.
    /// </summary>
    public static double LayerScale(string parameterName, int depth, double decay)
    {
        int numLayers = depth + 1;
        int layer;
        if (parameterName.Contains("cls_token", StringComparison.Ordinal) || parameterName.Contains("pos_embed", StringComparison.Ordinal))
            layer = 0;
        else if (parameterName.StartsWith("patch_embed", StringComparison.Ordinal))
            layer = 0;
        else if (parameterName.StartsWith("slide_encoder.encoder.layers.", StringComparison.Ordinal))
            layer = int.Parse(parameterName.Split('.')[3], System.Globalization.CultureInfo.InvariantCulture) + 1;
        else
            layer = numLayers;
        return Math.Pow(decay, numLayers - layer);
    }
}
