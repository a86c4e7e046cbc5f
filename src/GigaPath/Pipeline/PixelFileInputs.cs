using GigaPath.Imaging;
using GigaPath.Models.Tile;
using GigaPath.Runtime;
using GigaPath.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Pipeline;

/// <summary>
/// Tiles already preprocessed: the <c>pixel_values</c> tensor [N, 3, H, W] float32 of a safetensors file of any size,
/// each tile read straight from the memory mapping (by offset) when the loader asks for it.
/// </summary>
internal sealed class PixelFileInputs : TileSource, IDisposable
{
    public const string TensorName = "pixel_values";

    private readonly SafeTensorsFile _file;
    private readonly string _path;
    private readonly long[] _tileShape;

    public override int Count { get; }

    private PixelFileInputs(string path, SafeTensorsFile file, int count, long[] tileShape)
    {
        _path = path;
        _file = file;
        Count = count;
        _tileShape = tileShape;
    }

    /// <summary>Opens <paramref name="path"/> and checks <c>pixel_values</c> against what <paramref name="config"/> takes.</summary>
    public static PixelFileInputs Open(string path, TileEncoderConfig config)
    {
        var file = SafeTensorsFile.Open(path);
        try
        {
            if (!file.Contains(TensorName))
                throw new GigaPathException($"{path}: no tensor '{TensorName}' (file has: {string.Join(", ", file.Names.Take(12))})");
            var info = file.GetInfo(TensorName);
            var expected = $"[N, {config.InputChannels}, {config.ImageSize}, {config.ImageSize}] F32";
            var s = info.Shape;
            if (info.DType != TensorDType.F32)
                throw new GigaPathException($"{path}: tensor '{TensorName}' is {TensorDTypes.Code(info.DType)} {info.ShapeText}, expected {expected} (normalised pixels)");
            if (s.Length != 4 || s[1] != config.InputChannels || s[2] != config.ImageSize || s[3] != config.ImageSize)
                throw new GigaPathException($"{path}: tensor '{TensorName}' has shape {info.ShapeText}, expected {expected}; the model takes exactly {config.ImageSize}x{config.ImageSize} tiles");
            if (s[0] == 0 || s[0] > int.MaxValue)
                throw new GigaPathException($"{path}: tensor '{TensorName}' has {s[0]} tiles {info.ShapeText}");
            return new PixelFileInputs(path, file, (int)s[0], s[1..]);
        }
        catch
        {
            file.Dispose();
            throw;
        }
    }

    /// <summary>Tile <paramref name="index"/>'s floats, copied from the mapping (the encoder checks that they are finite).</summary>
    internal override float[] Read(int index, TilePreprocessor preprocessor)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(index);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(index, Count);
        long perTile = _tileShape.Aggregate(1L, (a, b) => a * b);
        var tile = new float[perTile];
        // By offset: the tensor may be 2 GiB or more (about 3,500 tiles of 224 px), a tile never is.
        _file.GetRawBytes(TensorName, index * perTile * sizeof(float), checked((int)(perTile * sizeof(float))))
            .CopyTo(System.Runtime.InteropServices.MemoryMarshal.AsBytes(tile.AsSpan()));
        return tile;
    }

    public override string Describe(int index) => $"{_path}: {TensorName} tile {index}";

    public void Dispose() => _file.Dispose();
}
