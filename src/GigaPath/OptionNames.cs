namespace GigaPath;

/// <summary>
/// The library options and arguments that error messages name (and <see cref="GigaPathException.Option"/> holds).
/// Library messages name these, never a host's flags; a host (the CLI, the server) maps them to its own flags with
/// <see cref="ForHost"/>.
/// </summary>
internal static class OptionNames
{
    public const string MaxAspectRatio = "TileEmbeddingOptions.MaxAspectRatio";
    public const string MaxTiles = "TileFeatureBudget.MaxTiles";
    public const string Level0TileSize = "level0TileSize";
    public const string DType = "EncoderOptions.DType";
    public const string Device = "EncoderOptions.Device";
    public const string AllowSlowDType = "EncoderOptions.AllowSlowDType";
    public const string CudaBackend = "the CUDA build of libtorch (a TorchSharp-cuda package)";
    public const string ConvertDType = "WeightConverter.Convert(dtype)";
    public const string ConvertKey = "WeightConverter.Convert(key)";
    public const string PcaComponent = "FeatureMaps.PcaComponent(component)";
    public const string ScalarColumn = "TileValues.Read(column)";
    public const string ForegroundThreshold = "TokenPcaMap.Draw(threshold)";
    public const string ForegroundLarger = "TokenPcaMap.Draw(foregroundLarger)";
    public const string Shard = "ShardSpec";
    public const string BatchSize = "PipelineOptions.BatchSize";
    public const string Readers = "PipelineOptions.Readers";
    public const string PipelineMaxTiles = "PipelineOptions.MaxTiles";
    public const string SaveTiles = "PipelineOptions.SaveTiles";
    public const string TissueMethod = "TilingOptions.TissueMethod";
    public const string TargetMpp = "TilingOptions.TargetMpp";
    public const string SlideMpp = "TilingOptions.SlideMpp";
    public const string OutputDirectory = "CohortOptions.OutputDirectory";
    public const string Force = "CohortOptions.Force";
    public const string RetryFailed = "CohortOptions.RetryFailed";
    public const string TileOutputPath = "TileEmbeddingRequest.OutputPath";
    public const string PixelFile = "TileEmbeddingRequest.PixelFile";
    public const string IncludeTokens = "TileEmbeddingRequest.IncludeTokens";
    public const string TileBatchSize = "TileEmbeddingRequest.BatchSize";
    public const string Head = "TrainingOptions.Head";
    public const string SlideModel = "the slide encoder (slideModel)";
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
