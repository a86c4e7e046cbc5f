using System.Text.Json;

namespace GigaPath.Server.Hosting;

/// <summary>Float32 tensors as nested JSON arrays (the <c>format=json</c> answers of <c>/score</c> and <c>/score/slide</c>).</summary>
internal static class JsonTensors
{
    /// <summary>
    /// Writes a tensor as nested arrays, one innermost row at a time, flushing as it goes (a slide's hidden state is
    /// tens of megabytes of text). An enclosing array at depth d covers span[d] rows: it opens before the first of
    /// them and closes after the last.
    /// </summary>
    public static async Task WriteAsync(Utf8JsonWriter w, float[] data, long[] shape, CancellationToken cancel)
    {
        if (data.Length == 0)
        {
            w.WriteStartArray();
            w.WriteEndArray();
            return;
        }
        if (shape.Length == 0)
        {
            w.WriteNumberValue(data[0]);
            return;
        }
        int width = (int)shape[^1];
        var span = new long[shape.Length - 1];
        for (int d = span.Length - 1; d >= 0; d--)
            span[d] = shape[d] * (d + 1 < span.Length ? span[d + 1] : 1);
        long rows = span.Length > 0 ? span[0] : 1;
        for (long r = 0; r < rows; r++)
        {
            for (int d = 0; d < span.Length; d++)
                if (r % span[d] == 0) w.WriteStartArray();
            w.WriteStartArray();
            foreach (var v in data.AsSpan((int)(r * width), width)) w.WriteNumberValue(v);
            w.WriteEndArray();
            for (int d = span.Length - 1; d >= 0; d--)
                if ((r + 1) % span[d] == 0) w.WriteEndArray();
            if (w.BytesPending > 1 << 16) await w.FlushAsync(cancel);
        }
    }
}
