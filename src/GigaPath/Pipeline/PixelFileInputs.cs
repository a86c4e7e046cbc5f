using GigaPath.Models.Tile;
using GigaPath.Runtime;
using GigaPath.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Pipeline;

/// <summary>
/// Tiles already preprocessed: the <c>pixel_values</c> tensor [N, 3, H, W] float32 of a safetensors file of any size,
/// read a batch at a time straight from the memory mapping.
/// </summary>
internal sealed class PixelFileInputs : ITileInputs, IDisposable
{
    public const string TensorName = "pixel_values";

    private readonly SafeTensorsFile _file;
    private readonly string _path;
    private readonly long[] _tileShape;

    public int Count { get; }

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
            var info = file.Info(TensorName);
            var expected = $"[N, {config.InChans}, {config.ImgSize}, {config.ImgSize}] F32";
            var s = info.Shape;
            if (info.DType != TensorDType.F32)
                throw new GigaPathException($"{path}: tensor '{TensorName}' is {TensorDTypes.Code(info.DType)} {info.ShapeText}, expected {expected} (normalised pixels)");
            if (s.Length != 4 || s[1] != config.InChans || s[2] != config.ImgSize || s[3] != config.ImgSize)
                throw new GigaPathException($"{path}: tensor '{TensorName}' has shape {info.ShapeText}, expected {expected}; the model takes exactly {config.ImgSize}x{config.ImgSize} tiles");
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

    public Tensor ReadBatch(int start, int count)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(start);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(start + count, Count);
        long perTile = _tileShape.Aggregate(1L, (a, b) => a * b) * sizeof(float);
        var batch = torch.empty([count, .. _tileShape], ScalarType.Float32);
        // By offset: the tensor may be 2 GiB or more (about 3,500 tiles of 224 px), a batch never is.
        _file.RawBytes(TensorName, start * perTile, checked((int)(count * perTile))).CopyTo(batch.bytes);
        if (FiniteValues.NonFiniteRows(batch) is { } bad)
        {
            batch.Dispose();
            throw new GigaPathException($"{Describe(start + (int)bad.First)} holds NaN or infinity; the input pixels must be finite");
        }
        return batch;
    }

    public string Describe(int index) => $"{_path}: {TensorName} tile {index}";

    public void Dispose() => _file.Dispose();
}
