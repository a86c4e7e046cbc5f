namespace GigaPath;

/// <summary>
/// The library options and arguments that error messages name (and <see cref="GigaPathException.Option"/> holds).
/// Library messages name these, never a host's flags; a host (the CLI, the server) maps them to its own flags with
/// <see cref="ForHost"/>.
/// </summary>
public static class OptionNames
{
    /// <summary>Named in messages as <c>TileEmbeddingOptions.MaxAspectRatio</c>.</summary>
    public const string MaxAspectRatio = "TileEmbeddingOptions.MaxAspectRatio";
    /// <summary>Named in messages as <c>TileFeatureBudget.MaxTiles</c>.</summary>
    public const string MaxTiles = "TileFeatureBudget.MaxTiles";
    /// <summary>Named in messages as <c>level0TileSize</c>.</summary>
    public const string Level0TileSize = "level0TileSize";
    /// <summary>Named in messages as <c>EncoderOptions.DType</c>.</summary>
    public const string DType = "EncoderOptions.DType";
    /// <summary>Named in messages as <c>EncoderOptions.Device</c>.</summary>
    public const string Device = "EncoderOptions.Device";
    /// <summary>Named in messages as <c>EncoderOptions.AllowSlowDType</c>.</summary>
    public const string AllowSlowDType = "EncoderOptions.AllowSlowDType";
    /// <summary>Named in messages as <c>the CUDA build of libtorch (a TorchSharp-cuda package)</c>.</summary>
    public const string CudaBackend = "the CUDA build of libtorch (a TorchSharp-cuda package)";
    /// <summary>Named in messages as <c>WeightConverter.Convert(dtype)</c>.</summary>
    public const string ConvertDType = "WeightConverter.Convert(dtype)";
    /// <summary>Named in messages as <c>WeightConverter.Convert(key)</c>.</summary>
    public const string ConvertKey = "WeightConverter.Convert(key)";
    /// <summary>Named in messages as <c>TileValues.Read(column)</c>.</summary>
    public const string ScalarColumn = "TileValues.Read(column)";
    /// <summary>Named in messages as <c>TokenPcaMap.Draw(threshold)</c>.</summary>
    public const string ForegroundThreshold = "TokenPcaMap.Draw(threshold)";
    /// <summary>Named in messages as <c>TokenPcaMap.Draw(foregroundLarger)</c>.</summary>
    public const string ForegroundLarger = "TokenPcaMap.Draw(foregroundLarger)";
    /// <summary>Named in messages as <c>ShardSpec</c>.</summary>
    public const string Shard = "ShardSpec";
    /// <summary>Named in messages as <c>PipelineOptions.BatchSize</c>.</summary>
    public const string BatchSize = "PipelineOptions.BatchSize";
    /// <summary>Named in messages as <c>PipelineOptions.Readers</c>.</summary>
    public const string Readers = "PipelineOptions.Readers";
    /// <summary>Named in messages as <c>PipelineOptions.MaxTiles</c>.</summary>
    public const string PipelineMaxTiles = "PipelineOptions.MaxTiles";
    /// <summary>Named in messages as <c>PipelineOptions.SaveTiles</c>.</summary>
    public const string SaveTiles = "PipelineOptions.SaveTiles";
    /// <summary>Named in messages as <c>TilingOptions.TissueMethod</c>.</summary>
    public const string TissueMethod = "TilingOptions.TissueMethod";
    /// <summary>Named in messages as <c>TilingOptions.TargetMpp</c>.</summary>
    public const string TargetMpp = "TilingOptions.TargetMpp";
    /// <summary>Named in messages as <c>TilingOptions.SlideMpp</c>.</summary>
    public const string SlideMpp = "TilingOptions.SlideMpp";
    /// <summary>Named in messages as <c>CohortOptions.OutputDirectory</c>.</summary>
    public const string OutputDirectory = "CohortOptions.OutputDirectory";
    /// <summary>Named in messages as <c>CohortOptions.Force</c>.</summary>
    public const string Force = "CohortOptions.Force";
    /// <summary>Named in messages as <c>CohortOptions.RetryFailed</c>.</summary>
    public const string RetryFailed = "CohortOptions.RetryFailed";
    /// <summary>Named in messages as <c>TileEmbeddingRequest.OutputPath</c>.</summary>
    public const string TileOutputPath = "TileEmbeddingRequest.OutputPath";
    /// <summary>Named in messages as <c>TileEmbeddingRequest.PixelFile</c>.</summary>
    public const string PixelFile = "TileEmbeddingRequest.PixelFile";
    /// <summary>Named in messages as <c>TileEmbeddingRequest.IncludeTokens</c>.</summary>
    public const string IncludeTokens = "TileEmbeddingRequest.IncludeTokens";
    /// <summary>Named in messages as <c>TileEmbeddingRequest.BatchSize</c>.</summary>
    public const string TileBatchSize = "TileEmbeddingRequest.BatchSize";
    /// <summary>Named in messages as <c>TrainingOptions.Head</c>.</summary>
    public const string Head = "TrainingOptions.Head";
    /// <summary>Named in messages as <c>the slide encoder (slideModel)</c>.</summary>
    public const string SlideModel = "the slide encoder (slideModel)";
    /// <summary>Named in messages as <c>PredictionRequest.AttentionFormat</c>.</summary>
    public const string AttentionFormat = "PredictionRequest.AttentionFormat";

    /// <summary>
    /// <paramref name="message"/> with every library option in <paramref name="flags"/> replaced by the host's flag,
    /// so a CLI user reads <c>--max-tiles</c> where a library caller reads <c>TileFeatureBudget.MaxTiles</c>.
    /// </summary>
    public static string ForHost(string message, IReadOnlyDictionary<string, string> flags)
    {
        foreach (var (option, flag) in flags.OrderByDescending(f => f.Key.Length))
            message = message.Replace(option, flag, StringComparison.Ordinal);
        return message;
    }
}
