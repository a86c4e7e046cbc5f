using GigaPath.Models.Heads;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Training;

/// <summary>Turns a <see cref="SlideBag"/> into the tensors a head reads.</summary>
internal static class SlideInputs
{
    /// <summary>
    /// Tile features [N', D] in <paramref name="dtype"/> and coordinates [N', 2] (float32) for the sequence heads, or the
    /// slide vector for the linear probe. When <paramref name="shuffle"/> is given the tiles are permuted first (the
    /// reference shuffles tiles during fine-tuning); at most <paramref name="maxTiles"/> are kept. The tensors belong to
    /// the caller's dispose scope.
    /// </summary>
    public static SlideTensors ToTensors(SlideBag bag, HeadConfig config, Device device, ScalarType dtype,
        int maxTiles = int.MaxValue, DeterministicRandom? shuffle = null)
    {
        if (config.Kind == HeadKind.Linear)
        {
            var v = SlideVector(bag, config);
            return new SlideTensors(null, null, tensor(v, [v.Length]).to(dtype, device));
        }
        var (values, width) = TileMatrix(bag, config);
        var features = tensor(values, [bag.Count, width]);
        // The slide encoder reads tiling-resolution coordinates when the file has them; other heads ignore coordinates.
        var xy = config.Kind == HeadKind.Slide ? bag.RequireEncoderCoords() : bag.Coords;
        var coords = xy is null ? zeros(bag.Count, 2) : tensor(xy, [bag.Count, 2]);
        if (shuffle is not null || bag.Count > maxTiles)
        {
            var order = shuffle?.Permutation(bag.Count) ?? Enumerable.Range(0, bag.Count).ToArray();
            var keep = tensor(order.Take(Math.Min(maxTiles, bag.Count)).Select(i => (long)i).ToArray());
            // The selected rows are a copy; the tensors they came from wrap (and pin) the bag's arrays. Releasing them
            // lets the collector take the arrays, so a slide is not held twice during its step (61 MB at 10k tiles).
            var (allFeatures, allCoords) = (features, coords);
            features = allFeatures.index_select(0, keep);
            coords = allCoords.index_select(0, keep);
            allFeatures.Dispose();
            allCoords.Dispose();
        }
        return new SlideTensors(features.to(dtype, device), coords.to(device), null);
    }

    /// <summary>The per-tile vectors a sequence head reads: tile features, or contextual tile embeddings for tile_input = contextual.</summary>
    public static (float[] Values, int Width) TileMatrix(SlideBag bag, HeadConfig config)
    {
        var (values, width, what) = config.TileInput == HeadConfig.ContextualInput
            ? (bag.Contextual ?? throw new GigaPathException($"{bag.Path}: the head reads contextual tile embeddings ('{FeatureFiles.ContextualKey}'), which neither this file nor {FeatureFiles.SlideFileFor(bag.Path)} holds; give {OptionNames.SlideModel} to compute them"),
                bag.ContextualDim, "contextual tile embeddings")
            : (bag.Features, bag.Dim, "tile features");
        if (width != config.InputDim)
            throw new GigaPathException($"{bag.Path}: {what} are {width} wide but the head expects {config.InputDim}");
        return (values, width);
    }

    /// <summary>The linear probe's input: the stored slide embedding or the tile mean, as the head's configuration says.</summary>
    public static float[] SlideVector(SlideBag bag, HeadConfig config)
    {
        bool stored = config.SlideInput == "stored";
        if (stored && bag.SlideEmbedding is null)
            throw new GigaPathException($"{bag.Path}: the head was trained on stored slide embeddings but this file has no 'slide_embedding'");
        var v = bag.SlideVector(stored);
        if (v.Length != config.InputDim)
            throw new GigaPathException($"{bag.Path}: the slide vector is {v.Length} wide but the head expects {config.InputDim}");
        return v;
    }
}
