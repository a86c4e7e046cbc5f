using GigaPath.Server.Batching;
using GigaPath.Server.Scoring;

namespace GigaPath.Server.Hosting;

/// <summary>
/// The models behind the endpoints as they load in the background: nothing until loaded (the endpoints answer 503
/// and <c>/ready</c> says "loading"), then the tile backend with its batching queue and, when configured, the
/// slide backend; or the load error.
/// </summary>
internal sealed class ModelState
{
    private volatile TileModel? _tile;
    private volatile SlideModel? _slide;
    private volatile Exception? _failure;
    private volatile bool _listening;

    internal sealed record TileModel(ITileEmbeddingBackend Backend, EmbeddingQueue Queue);

    internal sealed record SlideModel(Slide.ISlideEmbeddingBackend Backend, Slide.SlideRunner Runner);

    public bool SlideConfigured { get; init; }

    public TileModel? Tile => _tile;
    public SlideModel? Slide => _slide;
    public Exception? Failure => _failure;

    public bool IsReady => _tile is not null && (!SlideConfigured || _slide is not null) && _failure is null;

    /// <summary>Whether the bind guard has checked the addresses Kestrel bound; until then every request gets 503.</summary>
    public bool Listening => _listening;

    public void SetListening() => _listening = true;

    public void SetTile(TileModel tile) => _tile = tile;
    public void SetSlide(SlideModel slide) => _slide = slide;
    public void SetFailure(Exception e) => _failure = e;

    /// <summary>The tile model, or 503 (with Retry-After while loading) when it is not there.</summary>
    public TileModel RequireTile() => _tile ?? throw NotReady("tile encoder");

    public SlideModel RequireSlide()
    {
        if (!SlideConfigured)
            throw new ApiException(404, "no slide encoder is loaded; start the server with --slide-model");
        return _slide ?? throw NotReady("slide encoder");
    }

    private ApiException NotReady(string what) => _failure is { } e
        ? new ApiException(503, $"the {what} failed to load: {e.Message}")
        : new ApiException(503, $"the {what} is still loading") { RetryAfterSeconds = 5 };
}
