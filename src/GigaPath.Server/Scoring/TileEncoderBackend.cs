using GigaPath.Imaging;
using GigaPath.Models.Tile;
using GigaPath.Pipeline;
using GigaPath.Runtime;
using GigaPath.Server.Hosting;
using TorchSharp;
using GigaPath.Models;

namespace GigaPath.Server.Scoring;

/// <summary>
/// The real tile model: <see cref="ImageDecoder"/> + the model's own preprocessing
/// (<see cref="TileEncoder.Preprocessor"/>: its config's size, mean and std) and <see cref="TileEncoder"/>, the
/// same library calls <c>embed-tiles</c> and the slide pipeline make, so an image gets the same embedding from each.
/// The encoder computes each tile independently of its batch-mates, so dynamic batching does not change results.
/// </summary>
public sealed class TileEncoderBackend : ITileEmbeddingBackend
{
    private readonly TileEncoder _encoder;
    private readonly TilePreprocessor _preprocessor;

    public TileEncoderBackend(TileEncoder encoder, TilePreprocessor? preprocessor = null)
    {
        _encoder = encoder;
        _preprocessor = preprocessor ?? encoder.Preprocessor;
        if (_preprocessor.CropSize != encoder.Config.ImageSize)
            throw new GigaPathException($"preprocessing crops to {_preprocessor.CropSize} px but the tile encoder takes {encoder.Config.ImageSize} px");
    }

    /// <summary>Loads the tile encoder named by <see cref="ServerOptions.ModelDir"/> on the chosen device and dtype.</summary>
    public static TileEncoderBackend Load(ServerOptions options)
    {
        var device = DeviceSelection.ParseDevice(options.Device);
        var encoderOptions = new TileEncoderOptions
        {
            Encoder = options.Encoder,
            Device = device,
            DType = DeviceSelection.ParseDType(options.DType, device),
            AllowSlowDType = options.AllowSlowDType,
        };
        var encoder = TileEncoder.Load(options.ModelDir, encoderOptions);
        return new TileEncoderBackend(encoder, encoder.Preprocessor.WithMaxAspectRatio(options.MaxAspectRatio));
    }

    public int Dim => _encoder.Config.OutputDim;

    public int TokenDim => _encoder.Config.EmbedDim;

    public int GridSize => _encoder.Config.GridSize;

    public string Description =>
        $"{_encoder.Config.Encoder} {_encoder.Source ?? "in-memory model"} (sha256 {_encoder.WeightsSha256[..12]}, {_encoder.Options.Device.type.ToString().ToLowerInvariant()}, {DeviceSelection.Name(_encoder.Options.DType)})";

    public float[] Preprocess(byte[] encodedImage, int row, long maxPixels, Action<int, int>? onSize = null)
    {
        var source = $"row {row}";
        try
        {
            return _preprocessor.Preprocess(ImageDecoder.Decode(encodedImage, source, maxPixels, onSize), source);
        }
        catch (ImageTooLargeException e)
        {
            // The decoder's pixel limit is the server's setting; the aspect-ratio message names the library option, mapped here.
            var message = e.Width * e.Height > maxPixels ? $"{e.Message}; raise the limit with the server's --max-image-pixels" : ServerFlags.Describe(e.Message);
            throw new ApiException(413, message, row, e);
        }
        catch (GigaPathException e)
        {
            throw new ApiException(422, ServerFlags.Describe(e.Message), row, e);
        }
    }

    public float[][] Embed(IReadOnlyList<float[]> pixels, IReadOnlyList<string> names, TileOutput output, CancellationToken cancellationToken)
    {
        // The library's pack-and-encode step, the one its own tile loader runs: bad tiles are named by request and row.
        using var result = _encoder.EmbedBatch(TileSource.FromPreprocessed(pixels, names), returnTokens: output == TileOutput.PatchMap, cancellationToken);
        using var scope = torch.NewDisposeScope();
        // The map is the patch rows of forward_features ([B, prefix + g*g, D]: class token, registers, patches) turned
        // channels first: [B, D, g, g].
        var values = output == TileOutput.Cls
            ? result.Embeddings
            : result.Tokens!.narrow(1, _encoder.Config.PrefixTokens, GridSize * GridSize).transpose(1, 2).contiguous();
        var flat = values.data<float>().ToArray();
        int size = output == TileOutput.Cls ? Dim : TokenDim * GridSize * GridSize;
        var rows = new float[pixels.Count][];
        for (int i = 0; i < rows.Length; i++)
            rows[i] = flat.AsSpan(i * size, size).ToArray();
        return rows;
    }

    public void Dispose() => _encoder.Dispose();
}
