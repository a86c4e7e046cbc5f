using System.Text.Json;
using GigaPath.IO;
using GigaPath.Models.Slide;

namespace GigaPath.Server.Slide;

/// <summary>A <c>/score/slide</c> request: one slide's tiles with coordinates, the pooling and whether every layer's output is wanted.</summary>
internal sealed record SlideRequest(TileFeatures Tiles, SlidePooling Pool, bool AllLayers)
{
    public const string EmbeddingsField = "tile_embeddings";
    public const string CoordsField = "coords";

    /// <summary>
    /// Parses <c>{"tile_embeddings": [[...], ...], "coords": [[x, y], ...], "pool": "mean"|"cls", "all_layers": bool}</c>
    /// with a streaming reader (a slide's JSON can be hundreds of megabytes; no document tree is built).
    /// </summary>
    public static SlideRequest ParseJson(ReadOnlySpan<byte> body)
    {
        var reader = new Utf8JsonReader(body, new JsonReaderOptions { MaxDepth = 8 });
        (List<double> Data, int Rows, int Cols)? tiles = null, coords = null;
        var pool = SlidePooling.Mean;
        bool allLayers = false;
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
                    case EmbeddingsField: tiles = ReadMatrix(ref reader, EmbeddingsField, asFloat32: true); break;
                    case CoordsField: coords = ReadMatrix(ref reader, CoordsField, asFloat32: false); break;
                    case "pool":
                        if (reader.TokenType != JsonTokenType.String) throw new ApiException(400, "pool must be \"mean\" or \"cls\"");
                        pool = ParsePool(reader.GetString());
                        break;
                    case "all_layers":
                        if (reader.TokenType is not (JsonTokenType.True or JsonTokenType.False)) throw new ApiException(400, "all_layers must be true or false");
                        allLayers = reader.GetBoolean();
                        break;
                    default:
                        throw new ApiException(400, $"unknown field \"{name}\"; expected {EmbeddingsField}, {CoordsField}, pool, all_layers");
                }
            }
        }
        catch (JsonException e)
        {
            throw new ApiException(400, $"request body is not valid JSON: {e.Message}");
        }
        if (tiles is not { } t) throw new ApiException(400, $"\"{EmbeddingsField}\" is missing");
        if (coords is not { } c) throw new ApiException(400, $"\"{CoordsField}\" is missing");
        if (t.Rows == 0) throw new ApiException(400, $"\"{EmbeddingsField}\" has no tiles");
        if (c.Cols != 2) throw new ApiException(400, $"\"{CoordsField}\" rows must be [x, y] pairs, got {c.Cols} values per row");
        if (c.Rows != t.Rows)
            throw new ApiException(400, $"\"{EmbeddingsField}\" has {t.Rows} tiles but \"{CoordsField}\" has {c.Rows} rows");
        var features = new TileFeatures(t.Data.Select(v => (float)v).ToArray(), t.Rows, t.Cols, c.Data.ToArray(),
            new Dictionary<string, object>(), "request body");
        return new SlideRequest(features, pool, allLayers);
    }

    public static SlidePooling ParsePool(string? value)
    {
        try
        {
            return SlidePoolingNames.Parse(value, "pool");
        }
        catch (GigaPathException e)
        {
            throw new ApiException(400, e.Message);
        }
    }

    /// <summary>
    /// An array of equally long arrays of numbers, flattened row-major. With <paramref name="asFloat32"/> each number
    /// is parsed straight to the nearest float (parsing to double first could round twice).
    /// </summary>
    private static (List<double> Data, int Rows, int Cols) ReadMatrix(ref Utf8JsonReader reader, string field, bool asFloat32)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
            throw new ApiException(400, $"\"{field}\" must be an array of arrays of numbers");
        var data = new List<double>();
        int rows = 0, cols = -1;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.StartArray)
                throw new ApiException(400, $"\"{field}\"[{rows}] must be an array of numbers", rows);
            int n = 0;
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
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
                data.Add(v);
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
