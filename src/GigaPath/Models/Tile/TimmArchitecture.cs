namespace GigaPath.Models.Tile;

/// <summary>
/// The defaults a timm VisionTransformer entrypoint gives its model before a config.json's <c>model_args</c> (and a
/// model card's code-level kwargs) override them, as in timm's <c>vision_transformer.py</c>: a published config.json
/// often leaves out what the entrypoint already says (Virchow's has no <c>embed_dim</c> or <c>depth</c>).
/// </summary>
internal sealed record TimmArchitecture
{
    public required string Name { get; init; }
    public required int PatchSize { get; init; }
    public required int EmbedDim { get; init; }
    public required int Depth { get; init; }
    public required int HeadCount { get; init; }
    public double MlpRatio { get; init; } = 4.0;
    public double? LayerScaleInit { get; init; }
    public int RegisterTokens { get; init; }
    public bool NoEmbedClass { get; init; }
    public TileMlp Mlp { get; init; } = TileMlp.Gelu;
    public int ImageSize { get; init; } = 224;

    /// <summary>DINOv2's SwiGLU ratio as timm writes it (<c>2.66667 * 2</c>, exactly 5.33334 in binary64).</summary>
    private const double DinoV2SwiGluRatio = 2.66667 * 2;

    /// <summary>The entrypoints this engine builds, by timm name.</summary>
    public static IReadOnlyDictionary<string, TimmArchitecture> All { get; } = new[]
    {
        new TimmArchitecture
        {
            Name = "vit_giant_patch14_dinov2", PatchSize = 14, EmbedDim = 1536, Depth = 40, HeadCount = 24,
            MlpRatio = DinoV2SwiGluRatio, LayerScaleInit = 1e-5, Mlp = TileMlp.SwiGluPacked, ImageSize = 518,
        },
        new TimmArchitecture
        {
            Name = "vit_giant_patch14_reg4_dinov2", PatchSize = 14, EmbedDim = 1536, Depth = 40, HeadCount = 24,
            MlpRatio = DinoV2SwiGluRatio, LayerScaleInit = 1e-5, Mlp = TileMlp.SwiGluPacked, ImageSize = 518,
            RegisterTokens = 4, NoEmbedClass = true,
        },
        new TimmArchitecture
        {
            Name = "vit_base_patch14_reg4_dinov2", PatchSize = 14, EmbedDim = 768, Depth = 12, HeadCount = 12,
            LayerScaleInit = 1e-5, ImageSize = 518, RegisterTokens = 4, NoEmbedClass = true,
        },
        new TimmArchitecture { Name = "vit_giant_patch14_224", PatchSize = 14, EmbedDim = 1408, Depth = 40, HeadCount = 16, MlpRatio = 48.0 / 11 },
        new TimmArchitecture { Name = "vit_huge_patch14_224", PatchSize = 14, EmbedDim = 1280, Depth = 32, HeadCount = 16 },
        new TimmArchitecture { Name = "vit_large_patch16_224", PatchSize = 16, EmbedDim = 1024, Depth = 24, HeadCount = 16 },
    }.ToDictionary(a => a.Name);
}
