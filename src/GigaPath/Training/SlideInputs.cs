using GigaPath.Models.Heads;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Training;

/// <summary>Turns a <see cref="SlideBag"/> into the tensors a head reads.</summary>
public static class SlideInputs
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
            return new SlideTensors(null, null, tensor(v, [v.Length]).to(device));
        }
        if (bag.Dim != config.InputDim)
            throw new GigaPathException($"{bag.Path}: tile features are {bag.Dim} wide but the head expects {config.InputDim}");
        var features = tensor(bag.Features, [bag.Count, bag.Dim]);
        if (bag.Coords is null && config.Kind == HeadKind.Slide)
            throw new GigaPathException($"{bag.Path}: no 'coords'; the slide encoder needs each tile's level-0 (x, y)");
        var coords = bag.Coords is null ? zeros(bag.Count, 2) : tensor(bag.Coords, [bag.Count, 2]);
        if (shuffle is not null || bag.Count > maxTiles)
        {
            var order = shuffle?.Permutation(bag.Count) ?? Enumerable.Range(0, bag.Count).ToArray();
            var keep = tensor(order.Take(Math.Min(maxTiles, bag.Count)).Select(i => (long)i).ToArray());
            features = features.index_select(0, keep);
            coords = coords.index_select(0, keep);
        }
        return new SlideTensors(features.to(dtype, device), coords.to(device), null);
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
