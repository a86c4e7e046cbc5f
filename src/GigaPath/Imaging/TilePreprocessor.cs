using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Imaging;

/// <summary>
/// A tile encoder's input transform, bit-exact with torchvision's
/// <c>Resize(ResizeSize, BICUBIC or BILINEAR) → CenterCrop(CropSize) → ToTensor → Normalize(mean, std)</c> on a
/// Pillow image (docs/tile-encoder.md §2), which is also what timm's eval transform builds from a model's
/// <c>pretrained_cfg</c>. Immutable and thread-safe.
/// </summary>
public sealed class TilePreprocessor
{
    /// <summary>ImageNet's per-channel mean (RGB, for values in 0..1), Prov-GigaPath's normalisation.</summary>
    public static readonly IReadOnlyList<float> ImageNetMean = [0.485f, 0.456f, 0.406f];
    /// <summary>ImageNet's per-channel standard deviation (RGB), Prov-GigaPath's normalisation.</summary>
    public static readonly IReadOnlyList<float> ImageNetStd = [0.229f, 0.224f, 0.225f];

    /// <summary>Prov-GigaPath's transform: shorter side to 256, center crop 224, ImageNet mean/std.</summary>
    public static TilePreprocessor Default { get; } = new(256, 224, ImageNetMean, ImageNetStd);

    /// <summary>The length the shorter side is resized to.</summary>
    public int ResizeSize { get; }

    /// <summary>The side of the square center crop, i.e. the model's input size.</summary>
    public int CropSize { get; }

    /// <summary>The resize filter (Pillow's, bit for bit).</summary>
    public ResizeInterpolation Interpolation { get; }

    /// <summary>Per-channel mean subtracted after scaling bytes to 0..1 (RGB).</summary>
    public IReadOnlyList<float> Mean { get; }
    /// <summary>Per-channel standard deviation divided by after subtracting <see cref="Mean"/> (RGB).</summary>
    public IReadOnlyList<float> Std { get; }

    /// <summary>Default for <see cref="MaxAspectRatio"/>: tiles are square; 16:1 still resizes to at most 4096 × 256 px.</summary>
    public const double DefaultMaxAspectRatio = 16;

    /// <summary>
    /// Longest side over shortest side an image may have. The resize scales the short side to
    /// <see cref="ResizeSize"/>, so a thin image grows in proportion to its aspect ratio (a 40 KB 10000×1 PNG becomes
    /// 2,560,000 × 256 px, 2 GB); such images are refused before resizing (<see cref="ImageTooLargeException"/>).
    /// </summary>
    public double MaxAspectRatio
    {
        get => _maxAspectRatio;
        init => _maxAspectRatio = CheckMaxAspectRatio(value);
    }

    /// <summary>Returns <paramref name="value"/> when it is a valid <see cref="MaxAspectRatio"/> (finite, at least 1), else throws naming the option.</summary>
    public static double CheckMaxAspectRatio(double value) => value >= 1 && double.IsFinite(value)
        ? value
        : throw new GigaPathException($"{OptionNames.MaxAspectRatio}: must be a finite number >= 1, got {value}") { Option = OptionNames.MaxAspectRatio };

    private readonly double _maxAspectRatio = DefaultMaxAspectRatio;

    /// <summary>This transform with another <see cref="MaxAspectRatio"/>.</summary>
    public TilePreprocessor WithMaxAspectRatio(double maxAspectRatio) =>
        new(ResizeSize, CropSize, Mean, Std, Interpolation) { MaxAspectRatio = maxAspectRatio };

    /// <summary>Number of floats <see cref="Preprocess"/> returns: 3 × CropSize × CropSize.</summary>
    public int OutputLength => 3 * CropSize * CropSize;

    // (v / 255 - mean_c) / std_c for every byte value v, in float32 exactly as torchvision computes it.
    private readonly float[][] _lookup;

    /// <param name="resizeSize">Shorter-side length after resizing (torchvision <c>Resize(int)</c>).</param>
    /// <param name="cropSize">Center-crop side; must not exceed <paramref name="resizeSize"/>.</param>
    /// <param name="mean">Per-channel mean (3 values), applied in float32.</param>
    /// <param name="std">Per-channel standard deviation (3 positive values), applied in float32.</param>
    /// <param name="interpolation">The resize filter.</param>
    public TilePreprocessor(int resizeSize, int cropSize, IReadOnlyList<float> mean, IReadOnlyList<float> std,
        ResizeInterpolation interpolation = ResizeInterpolation.Bicubic)
    {
        if (resizeSize <= 0) throw new GigaPathException($"preprocessing: resize size must be positive, got {resizeSize}");
        if (cropSize <= 0 || cropSize > resizeSize)
            throw new GigaPathException($"preprocessing: crop size must be in 1..{resizeSize} (the resize size), got {cropSize}");
        if (mean is null || mean.Count != 3) throw new GigaPathException($"preprocessing: mean must have 3 values, got {mean?.Count ?? 0}");
        if (std is null || std.Count != 3) throw new GigaPathException($"preprocessing: std must have 3 values, got {std?.Count ?? 0}");
        for (int c = 0; c < 3; c++)
            if (!(std[c] > 0) || !float.IsFinite(std[c]) || !float.IsFinite(mean[c]))
                throw new GigaPathException($"preprocessing: mean/std for channel {c} must be finite with std > 0, got mean {mean[c]} std {std[c]}");

        if (!Enum.IsDefined(interpolation)) throw new GigaPathException($"preprocessing: unknown interpolation {interpolation}");
        ResizeSize = resizeSize;
        CropSize = cropSize;
        Interpolation = interpolation;
        Mean = mean.ToArray();
        Std = std.ToArray();
        _lookup = new float[3][];
        for (int c = 0; c < 3; c++)
        {
            var table = new float[256];
            for (int v = 0; v < 256; v++)
                table[v] = ((float)v / 255f - Mean[c]) / Std[c];
            _lookup[c] = table;
        }
    }

    /// <summary>
    /// The size <see cref="Resize"/> produces: shorter side = ResizeSize, longer side truncated like torchvision.
    /// Throws <see cref="ImageTooLargeException"/> when the image is thinner than <see cref="MaxAspectRatio"/> allows.
    /// </summary>
    /// <param name="width">Image width in pixels.</param>
    /// <param name="height">Image height in pixels.</param>
    /// <param name="source">Names the image in the error (a path, a request row).</param>
    public (int Width, int Height) GetResizedSize(int width, int height, string source = "image")
    {
        if (width <= 0 || height <= 0)
            throw new GigaPathException($"{source}: image size must be positive, got {width}x{height}");
        // Checked before any arithmetic on the resized size: the long side grows by ResizeSize / short side.
        long shortSide = Math.Min(width, height), longSide = Math.Max(width, height);
        if (longSide > MaxAspectRatio * shortSide)
        {
            double resized = (double)ResizeSize * longSide / shortSide;
            var (rw, rh) = width <= height ? ($"{ResizeSize}", $"{resized:F0}") : ($"{resized:F0}", $"{ResizeSize}");
            throw new ImageTooLargeException(
                $"{source}: a {width}x{height} image has an aspect ratio of {(double)longSide / shortSide:0.##}:1, above the limit of " +
                $"{MaxAspectRatio:0.##}:1 (resizing its short side to {ResizeSize} px would make it {rw}x{rh}); " +
                $"raise the limit with {OptionNames.MaxAspectRatio}", width, height) { Option = OptionNames.MaxAspectRatio };
        }
        if (width <= height)
            return (ResizeSize, LongSide(height, width, source));
        return (LongSide(width, height, source), ResizeSize);
    }

    // Python's int(size * long / short): true division of exact integers, then truncation.
    private int LongSide(int longSide, int shortSide, string source)
    {
        double side = Math.Floor((double)((long)ResizeSize * longSide) / shortSide);
        if (side > int.MaxValue)
            throw new ImageTooLargeException($"{source}: resizing a {longSide}x{shortSide} image gives a side of {side:F0} px, beyond any image size", longSide, shortSide);
        return (int)side;
    }

    /// <summary>Pillow resize (<see cref="Interpolation"/>) of the shorter side to <see cref="ResizeSize"/>; returns the input unchanged when already that size.</summary>
    /// <param name="image">The decoded image (not modified).</param>
    /// <param name="source">Names the image in errors (see <see cref="GetResizedSize"/>).</param>
    public RgbImage Resize(RgbImage image, string source = "image")
    {
        ArgumentNullException.ThrowIfNull(image);
        var (w, h) = GetResizedSize(image.Width, image.Height, source);
        return w == image.Width && h == image.Height ? image : PillowResample.Resize(image, w, h, Interpolation);
    }

    /// <summary>The centered CropSize × CropSize square; offsets round halves to even like Python's <c>round</c>.</summary>
    public RgbImage CenterCrop(RgbImage image)
    {
        ArgumentNullException.ThrowIfNull(image);
        if (image.Width < CropSize || image.Height < CropSize)
            throw new GigaPathException($"preprocessing: a {image.Width}x{image.Height} image is smaller than the {CropSize}x{CropSize} crop");
        int top = (int)Math.Round((image.Height - CropSize) / 2.0, MidpointRounding.ToEven);
        int left = (int)Math.Round((image.Width - CropSize) / 2.0, MidpointRounding.ToEven);
        return top == 0 && left == 0 && image.Width == CropSize && image.Height == CropSize
            ? image
            : image.Crop(left, top, CropSize, CropSize);
    }

    /// <summary>ToTensor + Normalize: HWC bytes of a CropSize² image into CHW floats.</summary>
    public void Normalize(RgbImage cropped, Span<float> chw)
    {
        ArgumentNullException.ThrowIfNull(cropped);
        if (cropped.Width != CropSize || cropped.Height != CropSize)
            throw new GigaPathException($"preprocessing: expected a {CropSize}x{CropSize} image to normalize, got {cropped.Width}x{cropped.Height}");
        if (chw.Length != OutputLength)
            throw new ArgumentException($"destination must hold {OutputLength} floats, got {chw.Length}", nameof(chw));
        int plane = CropSize * CropSize;
        var pixels = cropped.Pixels;
        var r = _lookup[0];
        var g = _lookup[1];
        var b = _lookup[2];
        var rOut = chw[..plane];
        var gOut = chw.Slice(plane, plane);
        var bOut = chw.Slice(2 * plane, plane);
        for (int i = 0, p = 0; i < plane; i++, p += 3)
        {
            rOut[i] = r[pixels[p]];
            gOut[i] = g[pixels[p + 1]];
            bOut[i] = b[pixels[p + 2]];
        }
    }

    /// <summary>The full transform: [3 × CropSize × CropSize] floats, CHW.</summary>
    /// <param name="image">The decoded image, any size (not modified).</param>
    /// <param name="source">Names the image in errors (a path, a request row).</param>
    public float[] Preprocess(RgbImage image, string source = "image")
    {
        var cropped = CenterCrop(Resize(image, source));
        var result = new float[OutputLength];
        Normalize(cropped, result);
        return result;
    }

    /// <summary>Decodes an image file (see <see cref="ImageDecoder"/>) and applies the transform.</summary>
    public float[] PreprocessFile(string path) => Preprocess(ImageDecoder.DecodeFile(path), path);

    /// <summary>
    /// Decodes and preprocesses <paramref name="count"/> image files from <paramref name="start"/> in parallel (one
    /// file per core) into a new [count, 3, CropSize, CropSize] float32 CPU tensor owned by the caller. A bad file
    /// throws the first failure in input order, naming the file.
    /// </summary>
    public Tensor PreprocessFiles(IReadOnlyList<string> files, int start, int count)
    {
        ArgumentNullException.ThrowIfNull(files);
        var tiles = new float[count][];
        var errors = new Exception?[count];
        Parallel.For(0, count, i =>
        {
            try
            {
                tiles[i] = PreprocessFile(files[start + i]);
            }
            catch (Exception e)
            {
                errors[i] = e;
            }
        });
        // Report the first bad file in input order, as a sequential loop would, not an AggregateException.
        if (errors.FirstOrDefault(e => e is not null) is { } first)
            ExceptionDispatchInfo.Throw(first);
        return ToBatch(tiles);
    }

    /// <summary>
    /// Stacks preprocessed tiles into a new [B, 3, CropSize, CropSize] float32 CPU tensor owned by the caller,
    /// allocated by libtorch (64-byte aligned): a tensor over a .NET array lies wherever the GC put it, and MKL's
    /// kernels round some rows differently depending on that alignment, so the same tiles would not always give the
    /// same bytes.
    /// </summary>
    public Tensor ToBatch(IReadOnlyList<float[]> tiles)
    {
        ArgumentNullException.ThrowIfNull(tiles);
        if (tiles.Count == 0) throw new GigaPathException("preprocessing: cannot make a batch of zero tiles");
        for (int i = 0; i < tiles.Count; i++)
        {
            if (tiles[i].Length != OutputLength)
                throw new GigaPathException($"preprocessing: tile {i} has {tiles[i].Length} values, expected {OutputLength} (3x{CropSize}x{CropSize})");
        }
        var batch = torch.empty([tiles.Count, 3, CropSize, CropSize], ScalarType.Float32);
        var destination = MemoryMarshal.Cast<byte, float>(batch.bytes);
        for (int i = 0; i < tiles.Count; i++)
            tiles[i].AsSpan().CopyTo(destination.Slice(i * OutputLength, OutputLength));
        return batch;
    }
}
