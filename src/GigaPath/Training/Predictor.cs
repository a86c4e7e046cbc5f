using System.Globalization;
using System.Text;
using GigaPath.Models.Heads;
using GigaPath.Runtime;
using GigaPath.Weights;
using TorchSharp;
using static TorchSharp.torch;

namespace GigaPath.Training;

/// <summary>How <see cref="Predictor"/> writes each slide's per-tile attention.</summary>
public enum AttentionFileFormat
{
    /// <summary><c>&lt;slide_id&gt;.attention.csv</c> with columns tile, x, y, attention, score.</summary>
    Csv,

    /// <summary><c>&lt;slide_id&gt;.attention.safetensors</c> with <c>attention</c>, <c>attention_scores</c> and <c>coords</c>.</summary>
    SafeTensors,
}

/// <summary>Inputs of one prediction run (<see cref="Predictor.RunAsync"/>).</summary>
/// <param name="Head">The trained head: <c>head.safetensors</c> (with <c>head.json</c> beside it), <c>head.json</c>, or its fold folder.</param>
/// <param name="Inputs">Tile-feature files (.safetensors, .h5) or folders of them.</param>
/// <param name="OutputCsv">Where the predictions CSV is written (atomically).</param>
/// <param name="AttentionDirectory">Where per-tile attention is written for attention heads; null for <c>attention</c> beside the CSV.</param>
/// <param name="AttentionFormat">The attention files' format.</param>
/// <param name="Device">Device name (cpu, cuda, cuda:N).</param>
/// <param name="DType">Compute dtype name (float32, bfloat16).</param>
/// <param name="SlideModel">Where the slide encoder is now, for a contextual head whose recorded encoder path moved (its SHA-256 must match).</param>
/// <param name="Level0TileSize">The tile width in level-0 pixels for feature files that do not say it.</param>
public sealed record PredictionRequest(
    string Head, IReadOnlyList<string> Inputs, string OutputCsv,
    string? AttentionDirectory = null, AttentionFileFormat AttentionFormat = AttentionFileFormat.Csv, string Device = "cpu", string DType = "float32",
    string? SlideModel = null, double? Level0TileSize = null);

/// <summary>
/// Scores feature files with a trained head: one CSV row per slide (slide_id, path, predicted class, one probability
/// column per class) and, for attention pooling, one file per slide with each tile's coordinates, softmax attention
/// and raw attention score. Every input is checked against the head before the first slide is scored.
/// </summary>
public static class Predictor
{
    /// <summary>
    /// Scores every slide of <paramref name="request"/> on the thread pool, writing the CSV and attention files.
    /// <paramref name="progress"/> hears one line per slide; cancellation is checked between slides.
    /// </summary>
    /// <param name="request">The head, the inputs and where to write.</param>
    /// <param name="progress">Told a line per slide scored; null for none.</param>
    /// <param name="cancellationToken">Stops between slides; the CSV is then not written.</param>
    /// <returns>One prediction per slide, in input order.</returns>
    /// <exception cref="GigaPathException">A missing or mismatched head or feature file; the message names it.</exception>
    /// <exception cref="OperationCanceledException">Cancelled.</exception>
    public static Task<IReadOnlyList<SlidePrediction>> RunAsync(PredictionRequest request, IProgress<string>? progress = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(request);
        return Task.Run(() =>
        {
            using var log = new ProgressWriter(progress);
            return Run(request, log, cancellationToken);
        }, cancellationToken);
    }

    internal static IReadOnlyList<SlidePrediction> Run(PredictionRequest request, TextWriter? log = null, CancellationToken cancellation = default)
    {
        log ??= TextWriter.Null;
        if (!Enum.IsDefined(request.AttentionFormat))
            throw new ArgumentOutOfRangeException(nameof(request), request.AttentionFormat, "unknown attention file format");
        var device = DeviceSelection.ParseDevice(request.Device);
        var dtype = DeviceSelection.ParseDType(request.DType, device);
        DeviceSelection.EnsureSupported(device, dtype);

        var files = request.Inputs.SelectMany(FeatureFiles.Expand).ToList();
        if (files.Count == 0) throw new GigaPathException($"no feature files (.safetensors, .h5) in {string.Join(", ", request.Inputs)}");
        var duplicate = files.GroupBy(FeatureFiles.SlideIdOf).FirstOrDefault(g => g.Count() > 1);
        if (duplicate is not null)
            throw new GigaPathException($"slide id '{duplicate.Key}' appears twice: {string.Join(" and ", duplicate)}");

        var config = HeadCheckpoint.ReadConfig(request.Head);
        // Contextual embeddings come from the encoder the head was trained with (checked by hash) when it recorded one.
        using var contextual = config.TileInput == HeadConfig.ContextualInput && config.SlideEncoderSource is { } source
            ? ContextualTiles.Load(request.SlideModel ?? source, config.SlideEncoderSha256)
            : null;
        foreach (var f in files) CheckWidth(FeatureFiles.Probe(f), config, contextual);

        using var head = HeadCheckpoint.Load(request.Head);
        head.to(device);
        if (dtype != ScalarType.Float32) head.ToComputeType(dtype);
        bool attention = config.Kind == HeadKind.Abmil;
        var attentionDir = request.AttentionDirectory ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(request.OutputCsv))!, "attention");

        var results = new List<SlidePrediction>();
        var csv = new StringBuilder();
        csv.AppendLine(Csv.Line(new[] { "slide_id", "path", "predicted" }.Concat(config.Classes.Select(c => "prob_" + c))));
        foreach (var path in files)
        {
            cancellation.ThrowIfCancellationRequested();
            var bag = FeatureFiles.Read(path, level0TileSize: request.Level0TileSize);
            if (contextual is not null) bag = contextual.Apply(bag);
            var p = HeadEvaluator.Predict(head, bag, device, dtype);
            int predicted = Metrics.ArgMax([p.ProbabilityValues])[0];
            p.PredictedClass = config.Classes[predicted];
            results.Add(p);
            csv.AppendLine(Csv.Line(new[] { bag.SlideId, path, config.Classes[predicted] }.Concat(p.Probabilities.Select(Csv.Number))));
            if (attention) p.AttentionPath = WriteAttention(attentionDir, request.AttentionFormat, bag, p);
            log.WriteLine($"{bag.SlideId}: {config.Classes[predicted]} ({string.Join(", ", config.Classes.Select((c, i) => $"{c} {p.Probabilities[i]:F4}"))})");
        }
        AtomicFile.WriteAllText(request.OutputCsv, csv.ToString());
        return results;
    }

    private static void CheckWidth(FeatureFileInfo info, HeadConfig config, ContextualTiles? contextual)
    {
        if (config.TileInput == HeadConfig.ContextualInput)
        {
            if (contextual is not null)
            {
                if (info.Dim != contextual.Config.InputChannels)
                    throw new GigaPathException($"{info.Path}: tile features are {info.Dim} wide but the slide encoder takes {contextual.Config.InputChannels}");
            }
            else if (info.ContextualDim != config.InputDim)
            {
                throw new GigaPathException(info.ContextualDim is null
                    ? $"{info.Path}: the head reads contextual tile embeddings ('{FeatureFiles.ContextualKey}'), which neither the file nor its .slide.safetensors holds"
                    : $"{info.Path}: contextual tile embeddings are {info.ContextualDim} wide but the head expects {config.InputDim}");
            }
            return;
        }
        if (config.Kind == HeadKind.Linear && config.SlideInput == "stored")
        {
            if (info.SlideEmbeddingDim != config.InputDim)
                throw new GigaPathException(info.SlideEmbeddingDim is null
                    ? $"{info.Path}: the head was trained on stored slide embeddings but this file has no 'slide_embedding'"
                    : $"{info.Path}: slide_embedding is {info.SlideEmbeddingDim} wide but the head expects {config.InputDim}");
            return;
        }
        if (info.Dim != config.InputDim)
            throw new GigaPathException($"{info.Path}: tile features are {info.Dim} wide but the head expects {config.InputDim}");
    }

    /// <summary>Per-tile attention of one slide: &lt;slide_id&gt;.attention.csv (tile,x,y,attention,score) or .safetensors.</summary>
    internal static string WriteAttention(string directory, AttentionFileFormat format, SlideBag bag, SlidePrediction p)
    {
        var a = p.AttentionValues ?? throw new ArgumentException("prediction has no attention", nameof(p));
        var s = p.AttentionScoreValues!;
        var coords = bag.Coords ?? new float[2 * bag.Count];
        var path = Path.Combine(directory, $"{bag.SlideId}.attention.{(format == AttentionFileFormat.Csv ? "csv" : "safetensors")}");
        if (format == AttentionFileFormat.Csv)
        {
            var sb = new StringBuilder("tile,x,y,attention,score\n");
            for (int i = 0; i < a.Length; i++)
                sb.Append(CultureInfo.InvariantCulture, $"{i},{coords[2 * i]:R},{coords[2 * i + 1]:R},{a[i]:R},{s[i]:R}\n");
            AtomicFile.WriteAllText(path, sb.ToString());
        }
        else
        {
            using var scope = NewDisposeScope();
            SafeTensorsWriter.Write(path, new Dictionary<string, Tensor>
            {
                ["attention"] = tensor(a),
                ["attention_scores"] = tensor(s),
                ["coords"] = tensor(coords, [bag.Count, 2]),
            }, new Dictionary<string, string> { ["slide_id"] = bag.SlideId, ["source"] = bag.Path });
        }
        return path;
    }
}
