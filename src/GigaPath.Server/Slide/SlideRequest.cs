using System.Text.Json;
using GigaPath.Weights;

namespace GigaPath.Server.Slide;

/// <summary>
/// A <c>/score/slide</c> request: <paramref name="TileCount"/> tile embeddings (row-major, <paramref name="Dim"/>
/// floats each) with their (x, y) coordinates, the pooling and whether every layer's output is wanted.
/// </summary>
internal sealed record SlideRequest(float[] TileEmbeddings, int TileCount, int Dim, float[] Coords, SlidePooling Pool, bool AllLayers)
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
        (float[] Data, int Rows, int Cols)? tiles = null, coords = null;
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
                    case EmbeddingsField: tiles = ReadMatrix(ref reader, EmbeddingsField); break;
                    case CoordsField: coords = ReadMatrix(ref reader, CoordsField); break;
                    case "pool":
                        if (reader.TokenType != JsonTokenType.String) throw new ApiException(400, "pool must be \"mean\" or \"cls\"");
                        pool = ParsePool(reader.GetString());
                        break;
                    case "all_layers":
                        if (reader.TokenType is not (JsonTokenType.True or JsonTokenType.False)) throw new ApiException(400, "all_layers must be true or false");
                        allLayers = reader.GetBoolean();
                        break;
                    default:
                        throw new ApiException(400, $"unknown field \"{name}\"; expected tile_embeddings, coords, pool, all_layers");
                }
            }
        }
        catch (JsonException e)
        {
            throw new ApiException(400, $"request body is not valid JSON: {e.Message}");
        }
        if (tiles is null) throw new ApiException(400, $"\"{EmbeddingsField}\" is missing");
        if (coords is null) throw new ApiException(400, $"\"{CoordsField}\" is missing");
        return Create(tiles.Value, coords.Value, pool, allLayers);
    }

    /// <summary>Reads <c>tile_embeddings</c> [N, D] and <c>coords</c> [N, 2] (a leading batch dimension of 1 is accepted) from a safetensors file.</summary>
    public static SlideRequest FromSafeTensors(ITensorSource source, SlidePooling pool, bool allLayers)
    {
        return Create(Matrix(source, EmbeddingsField), Matrix(source, CoordsField), pool, allLayers);

        static (float[], int, int) Matrix(ITensorSource source, string name)
        {
            if (!source.Contains(name))
                throw new ApiException(400, $"safetensors body has no tensor '{name}' (it has: {string.Join(", ", source.Names)})");
            var (data, shape) = source.ReadFloats(name);
            if (shape.Length == 3 && shape[0] == 1) shape = shape[1..];
            if (shape.Length != 2)
                throw new ApiException(400, $"tensor '{name}' must be 2-D [N, D], got [{string.Join(", ", shape)}]");
            return (data, (int)shape[0], (int)shape[1]);
        }
    }

    public static SlidePooling ParsePool(string? value) => value?.ToLowerInvariant() switch
    {
        "mean" or null => SlidePooling.Mean,
        "cls" => SlidePooling.Cls,
        _ => throw new ApiException(400, $"pool must be \"mean\" or \"cls\", got \"{value}\""),
    };

    private static SlideRequest Create((float[] Data, int Rows, int Cols) tiles, (float[] Data, int Rows, int Cols) coords, SlidePooling pool, bool allLayers)
    {
        if (tiles.Rows == 0) throw new ApiException(400, $"\"{EmbeddingsField}\" has no tiles");
        if (coords.Cols != 2) throw new ApiException(400, $"\"{CoordsField}\" rows must be [x, y] pairs, got {coords.Cols} values per row");
        if (coords.Rows != tiles.Rows)
            throw new ApiException(400, $"\"{EmbeddingsField}\" has {tiles.Rows} tiles but \"{CoordsField}\" has {coords.Rows} rows");
        int bad = Array.FindIndex(tiles.Data, v => !float.IsFinite(v));
        if (bad >= 0) throw new ApiException(400, $"\"{EmbeddingsField}\"[{bad / tiles.Cols}] holds a non-finite value", bad / tiles.Cols);
        bad = Array.FindIndex(coords.Data, v => !float.IsFinite(v));
        if (bad >= 0) throw new ApiException(400, $"\"{CoordsField}\"[{bad / 2}] holds a non-finite value", bad / 2);
        return new SlideRequest(tiles.Data, tiles.Rows, tiles.Cols, coords.Data, pool, allLayers);
    }

    /// <summary>An array of equally long arrays of numbers, flattened row-major.</summary>
    private static (float[] Data, int Rows, int Cols) ReadMatrix(ref Utf8JsonReader reader, string field)
    {
        if (reader.TokenType != JsonTokenType.StartArray)
            throw new ApiException(400, $"\"{field}\" must be an array of arrays of numbers");
        var data = new List<float>();
        int rows = 0, cols = -1;
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            if (reader.TokenType != JsonTokenType.StartArray)
                throw new ApiException(400, $"\"{field}\"[{rows}] must be an array of numbers", rows);
            int n = 0;
            while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
            {
                if (reader.TokenType != JsonTokenType.Number || !reader.TryGetSingle(out float v))
                    throw new ApiException(400, $"\"{field}\"[{rows}][{n}] is not a number", rows);
                data.Add(v);
                n++;
            }
            if (cols < 0) cols = n;
            else if (n != cols)
                throw new ApiException(400, $"\"{field}\"[{rows}] has {n} values but earlier rows have {cols}", rows);
            rows++;
        }
        return (data.ToArray(), rows, Math.Max(cols, 0));
    }
}
