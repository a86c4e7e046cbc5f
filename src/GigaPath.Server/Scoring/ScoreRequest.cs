using System.Text.Json;

namespace GigaPath.Server.Scoring;

/// <summary>
/// The Azure ML request body of the Prov-GigaPath endpoint (pandas "split" orientation):
/// <c>{"input_data": {"columns": ["image"], "index": [0, 1], "data": [["&lt;base64 PNG/JPEG&gt;"], ...]}}</c>.
/// <c>index</c> may be left out; when present it must have one entry per row.
/// </summary>
internal static class ScoreRequest
{
    public const string ImageColumn = "image";

    /// <summary>
    /// The rows of the request, each one's base64 text taken out only when it is decoded (a body's worth of UTF-16
    /// strings would double its memory); every structural problem is a 400 (413 for too many rows).
    /// </summary>
    public static Rows Parse(ReadOnlyMemory<byte> body, int maxImages)
    {
        try
        {
            return ParseDocument(body, maxImages);
        }
        catch (InvalidOperationException e)
        {
            throw Hosting.JsonText.NotUnicode(e);
        }
    }

    private static Rows ParseDocument(ReadOnlyMemory<byte> body, int maxImages)
    {
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(body, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new ApiException(400, $"request body is not valid JSON: {e.Message}");
        }
        try
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("input_data", out var input) || input.ValueKind != JsonValueKind.Object)
                throw new ApiException(400, "request body must be a JSON object with an \"input_data\" object");

            if (!input.TryGetProperty("columns", out var columns) || columns.ValueKind != JsonValueKind.Array)
                throw new ApiException(400, "input_data.columns is missing or not an array; expected [\"image\"]");
            if (columns.GetArrayLength() != 1 || columns[0].ValueKind != JsonValueKind.String || columns[0].GetString() != ImageColumn)
                throw new ApiException(400, $"input_data.columns must be [\"image\"], got {columns.GetRawText()}");

            if (!input.TryGetProperty("data", out var data) || data.ValueKind != JsonValueKind.Array)
                throw new ApiException(400, "input_data.data is missing or not an array of rows");
            int n = data.GetArrayLength();
            if (n == 0)
                throw new ApiException(400, "input_data.data has no rows");
            if (n > maxImages)
                throw new ApiException(413, $"input_data.data has {n} rows; at most {maxImages} images are accepted per request");

            if (input.TryGetProperty("index", out var index))
            {
                if (index.ValueKind != JsonValueKind.Array)
                    throw new ApiException(400, "input_data.index must be an array");
                if (index.GetArrayLength() != n)
                    throw new ApiException(400, $"input_data.index has {index.GetArrayLength()} entries but input_data.data has {n} rows");
            }

            var images = new List<JsonElement>(n);
            int row = 0;
            foreach (var r in data.EnumerateArray())
            {
                if (r.ValueKind != JsonValueKind.Array || r.GetArrayLength() != 1 || r[0].ValueKind != JsonValueKind.String)
                    throw new ApiException(400, $"input_data.data[{row}] must be a one-element array holding a base64 string", row);
                images.Add(r[0]);
                row++;
            }
            return new Rows(doc, images);
        }
        catch
        {
            doc.Dispose();
            throw;
        }
    }

    /// <summary>The parsed request's rows; the body must outlive them.</summary>
    internal sealed class Rows(JsonDocument document, IReadOnlyList<JsonElement> images) : IDisposable
    {
        public int Count => images.Count;

        /// <summary>
        /// Bytes decoding row <paramref name="row"/> holds at once before its pixels: the text as UTF-16 (2 per
        /// character) and the image bytes (3 per 4 characters), from the length of its JSON text without reading it.
        /// </summary>
        public long DecodingBytes(int row) => System.Runtime.InteropServices.JsonMarshal.GetRawUtf8Value(images[row]).Length * 11L / 4;

        /// <summary>Row <paramref name="row"/>'s image bytes (400 naming the row when they are not base64 or not valid Unicode).</summary>
        public byte[] Decode(int row)
        {
            string text;
            try
            {
                text = images[row].GetString()!;
            }
            catch (InvalidOperationException e)
            {
                throw Hosting.JsonText.NotUnicode(e);
            }
            return DecodeBase64(text, row);
        }

        public void Dispose() => document.Dispose();
    }

    /// <summary>Decodes one row's base64 (standard alphabet, whitespace tolerated); invalid text is a 400 naming the row.</summary>
    public static byte[] DecodeBase64(string text, int row)
    {
        try
        {
            var bytes = Convert.FromBase64String(text);
            if (bytes.Length == 0) throw new ApiException(400, $"row {row}: the image is empty", row);
            return bytes;
        }
        catch (FormatException)
        {
            throw new ApiException(400, $"row {row}: image is not valid base64", row);
        }
    }
}
