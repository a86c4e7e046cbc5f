using System.Globalization;
using GigaPath.Training;
using GigaPath.Weights;

namespace GigaPath.Visualization;

/// <summary>
/// One value per tile with its coordinates, as <c>gigapath predict</c> writes attention: a CSV whose header names
/// <c>x</c>, <c>y</c> and the value column, or a safetensors file with <c>coords</c> [N, 2] and a 1-D value tensor.
/// The value column/tensor is the one named when given, else <c>attention</c>, else the last CSV column /
/// the only 1-D tensor.
/// </summary>
internal static class ScalarFile
{
    public static (float[] Coords, float[] Values, string Column) Read(string path, string? column = null)
    {
        if (!File.Exists(path)) throw new GigaPathException($"{path}: scalar file not found");
        return path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) ? ReadSafetensors(path, column) : ReadCsv(path, column);
    }

    private static (float[], float[], string) ReadSafetensors(string path, string? column)
    {
        using var file = SafeTensorsFile.Open(path);
        if (!file.Contains("coords")) throw new GigaPathException($"{path}: no 'coords' tensor");
        var (coords, shape) = file.ReadFloats("coords");
        if (shape.Length != 2 || shape[1] != 2) throw new GigaPathException($"{path}: 'coords' must be [N, 2], got [{string.Join(", ", shape)}]");
        var oneD = file.Names.Where(n => file.GetInfo(n).Shape.Length == 1).ToList();
        var name = column ?? (file.Contains("attention") ? "attention" : oneD.Count == 1 ? oneD[0] : null)
            ?? throw new GigaPathException($"{path}: say which tensor holds the values ({OptionNames.ScalarColumn}); 1-D tensors: {string.Join(", ", oneD)}");
        if (!file.Contains(name)) throw new GigaPathException($"{path}: no tensor named '{name}'");
        var (values, vshape) = file.ReadFloats(name);
        if (values.Length != shape[0]) throw new GigaPathException($"{path}: '{name}' holds {values.Length} values for {shape[0]} tiles (shape [{string.Join(", ", vshape)}])");
        return (coords, values, name);
    }

    private static (float[], float[], string) ReadCsv(string path, string? column)
    {
        var lines = File.ReadAllLines(path).Where(l => l.Trim().Length > 0).ToList();
        if (lines.Count < 2) throw new GigaPathException($"{path}: expected a header and at least one row");
        var header = Csv.ParseLine(lines[0], $"{path}:1").Select(h => h.ToLowerInvariant()).ToList();
        int xi = header.IndexOf("x"), yi = header.IndexOf("y");
        if (xi < 0 || yi < 0) throw new GigaPathException($"{path}: the header needs columns 'x' and 'y' (found: {string.Join(", ", header)})");
        var name = column?.ToLowerInvariant() ?? (header.Contains("attention") ? "attention" : header[^1]);
        int vi = header.IndexOf(name);
        if (vi < 0) throw new GigaPathException($"{path}: no column '{name}' (found: {string.Join(", ", header)})");
        var coords = new float[2 * (lines.Count - 1)];
        var values = new float[lines.Count - 1];
        for (int r = 1; r < lines.Count; r++)
        {
            var f = Csv.ParseLine(lines[r], $"{path}:{r + 1}");
            float Parse(int i, string what) => i < f.Count && float.TryParse(f[i], NumberStyles.Float, CultureInfo.InvariantCulture, out var v)
                ? v : throw new GigaPathException($"{path}:{r + 1}: {what} '{(i < f.Count ? f[i] : "")}' is not a number");
            coords[2 * (r - 1)] = Parse(xi, "x");
            coords[2 * (r - 1) + 1] = Parse(yi, "y");
            values[r - 1] = Parse(vi, name);
        }
        return (coords, values, name);
    }
}
