using GigaPath.Models.Heads;
using GigaPath.Models.Slide;

namespace GigaPath.Training;

/// <summary>Derives a head's configuration from the cohort and the options, and how to build its initial weights.</summary>
internal static class HeadSetup
{
    /// <summary>
    /// For attention pooling over contextual tile embeddings computed here, <paramref name="contextual"/> receives the
    /// encoder (the caller installs it as the cohort's transform and disposes it).
    /// </summary>
    public static (HeadConfig Config, Func<HeadConfig, SlideHead> Create) Prepare(Cohort cohort, TrainingOptions options, string? slideModel, bool graded,
        out ContextualTiles? contextual)
    {
        contextual = null;
        var baseConfig = new HeadConfig
        {
            Kind = options.Head,
            Classes = cohort.Labels.Classes,
            Graded = graded,
            Dropout = options.Dropout,
        };
        switch (options.Head)
        {
            case HeadKind.Linear:
            {
                if (slideModel is not null)
                    throw new GigaPathException($"{OptionNames.SlideModel}: the linear head reads slide vectors from the feature files; it takes no slide encoder");
                string input = options.SlideInput switch
                {
                    "auto" => cohort.SlideEmbeddingDim is null ? "mean" : "stored",
                    "stored" when cohort.SlideEmbeddingDim is null =>
                        throw new GigaPathException($"{cohort.FeaturesDirectory}: slide_input 'stored' needs a 'slide_embedding' tensor in every feature file"),
                    var s => s,
                };
                var config = baseConfig with { SlideInput = input, InputDim = input == "stored" ? cohort.SlideEmbeddingDim!.Value : cohort.Dim };
                return (config, HeadFactory.Create);
            }
            case HeadKind.Abmil:
            {
                var config = baseConfig with { InputDim = cohort.Dim, HiddenDim = options.HiddenDim, AttentionDim = options.AttentionDim };
                bool useContextual = options.TileInput == HeadConfig.ContextualInput || (options.TileInput is null && slideModel is not null);
                if (slideModel is not null && !useContextual)
                    throw new GigaPathException($"{OptionNames.SlideModel} with tile_input = features: attention pooling would not use the slide encoder; drop one of them");
                if (useContextual && slideModel is not null)
                {
                    contextual = ContextualTiles.Load(slideModel);
                    if (contextual.Config.InputChannels != cohort.Dim)
                        throw new GigaPathException($"{slideModel}: the slide encoder takes {contextual.Config.InputChannels}-wide tile features but the features in {cohort.FeaturesDirectory} are {cohort.Dim} wide");
                    config = config with
                    {
                        TileInput = HeadConfig.ContextualInput, InputDim = contextual.Config.EmbedDim,
                        SlideEncoderSource = contextual.Source, SlideEncoderSha256 = contextual.Sha256,
                    };
                }
                else if (useContextual)
                {
                    var dim = cohort.ContextualDim ?? throw new GigaPathException(
                        $"{cohort.FeaturesDirectory}: tile_input = contextual needs '{FeatureFiles.ContextualKey}' for every slide (in <id>.safetensors or the pipeline's <id>.slide.safetensors), or {OptionNames.SlideModel} to compute them");
                    config = config with { TileInput = HeadConfig.ContextualInput, InputDim = dim };
                }
                return (config, HeadFactory.Create);
            }
            default:
            {
                if (slideModel is null)
                    throw new GigaPathException($"{OptionNames.Head} slide needs {OptionNames.SlideModel} (a slide encoder folder or weight file)");
                SlideEncoderConfig encoderConfig;
                using (var encoder = SlideEncoder.Load(slideModel))
                    encoderConfig = encoder.Config;
                if (encoderConfig.InputChannels != cohort.Dim)
                    throw new GigaPathException($"{slideModel}: the slide encoder takes {encoderConfig.InputChannels}-wide tile features but the features in {cohort.FeaturesDirectory} are {cohort.Dim} wide");
                FeatLayers.Parse(options.FeatLayer, encoderConfig.Depth);
                var config = baseConfig with
                {
                    InputDim = cohort.Dim,
                    FeatLayer = options.FeatLayer,
                    GlobalPool = options.GlobalPool,
                    Freeze = options.Freeze,
                    SlideEncoder = SlideClassificationHead.EncoderConfigJson(encoderConfig),
                };
                return (config, cfg =>
                {
                    var head = new SlideClassificationHead(cfg);
                    head.LoadEncoder(slideModel);
                    return head;
                });
            }
        }
    }
}
