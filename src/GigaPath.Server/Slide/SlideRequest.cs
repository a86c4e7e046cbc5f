using System.Text.Json;
using GigaPath.IO;
using GigaPath.Models.Slide;
using GigaPath.Server.Hosting;

namespace GigaPath.Server.Slide;

/// <summary>
/// A <c>/score/slide</c> request: one slide's tiles with coordinates, the pooling, whether every layer's output is
/// wanted, and the level-0 tile size for files whose level-0 coordinates come without it.
/// </summary>
internal sealed record SlideRequest(TileFeatures Tiles, SlidePooling Pool, bool AllLayers, double? Level0TileSize = null)
{
    public const string EmbeddingsField = "tile_embeddings";
    public const string CoordsField = "coords";

    /// <summary>
    /// Parses <c>{"tile_embeddings": [[...], ...], "coords": [[x, y], ...], "pool": "mean"|"cls", "all_layers": bool,
    /// "patch_size_level0": N}</c> with a streaming reader (a slide's JSON can be hundreds of megabytes; no document tree
    /// is built). <c>coords</c> are the slide encoder's positions (pixels at the tiling resolution, as in
    /// <c>coords_tiling</c>) unless <c>patch_size_level0</c> says they are level-0 pixels with tiles that wide. Rows
    /// beyond <paramref name="maxTiles"/> (413) and rows longer than <paramref name="dim"/> (400) are refused as soon as
    /// they are met, so the parsed values never exceed maxTiles × dim; the values are reserved in <paramref name="lease"/>
    /// as they are parsed (503 when the server's memory budget is full); on return it holds only the parsed values (the
    /// body's reservation is given back with the rest).
    /// </summary>
    public static SlideRequest ParseJson(ReadOnlySpan<byte> body, long maxTiles, int dim, MemoryBudget.Lease lease)
    {
        var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 8 });
        (Values<float> Data, int Rows, int Cols)? tiles = null;
        (Values<double> Data, int Rows, int Cols)? coords = null;
        var pool = SlidePooling.Mean;
        bool allLayers = false;
        double? level0 = null;
        try
        {
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject)
                throw new ApiException(400, "request body must be a JSON object with \"tile_embeddings\" and \"coords\"");
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var name = reader.GetString();
                reader.Read();
                switch (name)
                {
                    case EmbeddingsField: tiles = ReadMatrix<float>(ref reader, EmbeddingsField, maxTiles, dim, $"{dim} (this slide encoder's input)", lease); break;
                    case CoordsField: coords = ReadMatrix<double>(ref reader, CoordsField, maxTiles, 2, "[x, y] pairs", lease); break;
                    case "pool":
                        if (reader.TokenType != JsonTokenType.String) throw new ApiException(400, "pool must be \"mean\" or \"cls\"");
                        pool = ParsePool(reader.GetString());
                        break;
                    case "all_layers":
                        if (reader.TokenType is not (JsonTokenType.True or JsonTokenType.False)) throw new ApiException(400, "all_layers must be true or false");
                        allLayers = reader.GetBoolean();
                        break;
                    case "patch_size_level0":
                        if (reader.TokenType != JsonTokenType.Number || !reader.TryGetDouble(out var p0) || !(p0 > 0) || !double.IsFinite(p0))
                            throw new ApiException(400, "patch_size_level0 must be a positive number (the tile width in level-0 pixels)");
                        level0 = p0;
                        break;
                    default:
                        throw new ApiException(400, $"unknown field \"{name}\"; expected {EmbeddingsField}, {CoordsField}, pool, all_layers, patch_size_level0");
                }
            }
        }
        catch (JsonException e)
        {
            throw new ApiException(400, $"request body is not valid JSON: {e.Message}");
        }
        catch (InvalidOperationException e)
        {
            throw Hosting.JsonText.NotUnicode(e);
        }
        if (tiles is not { } t) throw new ApiException(400, $"\"{EmbeddingsField}\" is missing");
        if (coords is not { } c) throw new ApiException(400, $"\"{CoordsField}\" is missing");
        if (t.Rows == 0) throw new ApiException(400, $"\"{EmbeddingsField}\" has no tiles");
        if (c.Cols != 2) throw new ApiException(400, $"\"{CoordsField}\" rows must be [x, y] pairs, got {c.Cols} values per row");
        if (c.Rows != t.Rows)
            throw new ApiException(400, $"\"{EmbeddingsField}\" has {t.Rows} tiles but \"{CoordsField}\" has {c.Rows} rows");
        long parsed = ((long)t.Data.Count * sizeof(float)) + ((long)c.Data.Count * sizeof(double));
        lease.Grow(parsed, "the parsed tile embeddings");
        var xy = c.Data.ToArray();
        var values = t.Data.ToArray();
        // The body and the chunks are garbage now: the lease keeps only the parsed values.
        lease.Shrink(lease.Bytes - parsed);
        var features = level0 is null
            ? new TileFeatures(values, t.Rows, t.Cols, null, new Dictionary<string, object>(), "request body") { TilingCoords = xy }
            : new TileFeatures(values, t.Rows, t.Cols, xy, new Dictionary<string, object>(), "request body");
        return new SlideRequest(features, pool, allLayers, level0);
    }

    public static SlidePooling ParsePool(string? value) =>
        value is null ? SlidePooling.Mean
        : SlidePoolingNames.TryParse(value, out var pooling) ? pooling
        : throw new ApiException(400, $"pool '{value}' is not supported (use cls or mean)");

    /// <summary>
    /// Parsed values in fixed-size chunks, each reserved in the request's lease before it is allocated: unlike a
    /// doubling list, growing leaves no garbage behind and never holds two copies, and the one exact copy is made once
    /// parsing has finished.
    /// </summary>
    private sealed class Values<T>(MemoryBudget.Lease lease, string field) where T : unmanaged
    {
        private const int ChunkLength = 1 << 18;
        private readonly List<T[]> _chunks = new();

        public int Count { get; private set; }

        public unsafe void Add(T value)
        {
            int at = Count % ChunkLength;
            if (at == 0)
            {
                lease.Grow((long)ChunkLength * sizeof(T), $"parsing \"{field}\"");
                _chunks.Add(new T[ChunkLength]);
            }
            _chunks[^1][at] = value;
            Count++;
        }

        public T[] ToArray()
        {
            var all = new T[Count];
            for (int c = 0; c < _chunks.Count; c++)
                _chunks[c].AsSpan(0, Math.Min(ChunkLength, Count - (c * ChunkLength))).CopyTo(all.AsSpan(c * ChunkLength));
            return all;
        }
    }

    /// <summary>
    /// An array of equally long arrays of numbers, flattened row-major. Float values are parsed straight to the
    /// nearest float (parsing to double first could round twice).
    /// </summary>
    private static (Values<T> Data, int Rows, int Cols) ReadMatrix<T>(ref Utf8JsonReader reader, string field, long maxRows, int maxCols, string expectedCols, MemoryBudget.Lease lease)
        where T : unmanaged, System.Numerics.IFloatingPoint<T>
    {
        bool asFloat32 = typeof(T) == typeof(float);
        if (reader.TokenType != JsonTokenType.StartArray)
            throw new ApiException(400, $"\"{field}\" must be an array of arrays of numbers");
        var data = new Values<T>(lease, field);
        int rows = 0, cols = -1;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.StartArray)
                throw new ApiException(400, $"\"{field}\"[{rows}] must be an array of numbers", rows);
            if (rows >= maxRows)
                throw new ApiException(413, $"\"{field}\" has more than {maxRows:N0} rows (tiles), the limit; raise it with the server's --max-slide-tiles");
            int n = 0;
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                if (n >= maxCols)
                    throw new ApiException(400, $"\"{field}\"[{rows}] has more than {maxCols} values; expected {expectedCols}", rows);
                double v = double.NaN;
                bool parsed = false;
                if (reader.TokenType == JsonTokenType.Number && asFloat32)
                {
                    parsed = reader.TryGetSingle(out float f);
                    v = f;
                }
                else if (reader.TokenType == JsonTokenType.Number)
                {
                    parsed = reader.TryGetDouble(out v);
                }
                if (!parsed || !double.IsFinite(v))
                    throw new ApiException(400, $"\"{field}\"[{rows}][{n}] is not a finite number", rows);
                data.Add(T.CreateTruncating(v));
                n++;
            }
            if (cols < 0) cols = n;
            else if (n != cols)
                throw new ApiException(400, $"\"{field}\"[{rows}] has {n} values but earlier rows have {cols}", rows);
            rows++;
        }
        return (data, rows, Math.Max(cols, 0));
    }
}
