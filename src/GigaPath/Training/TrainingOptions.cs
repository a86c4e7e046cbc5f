using System.Globalization;
using GigaPath.Models.Heads;

namespace GigaPath.Training;

/// <summary>
/// Every setting of a cross-validated training run (<see cref="CrossValidation"/>), keyed as in a task file. Values
/// start at the head's defaults (the reference's recipes); a task file (<see cref="ApplyFile"/>) and single settings
/// (<see cref="Set"/>) change them, later ones winning. <see cref="Set"/> is the one place keys are parsed and checked.
/// Keys are snake_case (dashes are accepted too): <see cref="Keys"/> lists them; the readme describes each.
/// </summary>
public sealed class TrainingOptions
{
    /// <summary>The head these options train.</summary>
    public HeadKind Head { get; private set; }
    internal int Folds { get; set; } = 5;
    internal int Seed { get; set; }

    // optimisation (abmil, slide)
    internal int Epochs { get; set; }
    internal double WarmupEpochs { get; set; } = 1;
    /// <summary>Peak learning rate; when null it is <see cref="BaseLr"/> × accumulation / 256, as the reference computes it.</summary>
    internal double? Lr { get; set; }
    internal double BaseLr { get; set; }
    internal double MinLr { get; set; } = 1e-6;
    internal string LrScheduler { get; set; } = "cosine";
    internal double WeightDecay { get; set; }
    internal double LayerDecay { get; set; } = 0.95;
    internal int Accumulate { get; set; } = 1;
    internal double Dropout { get; set; }
    internal string ClassWeights { get; set; } = "balanced";
    internal string ModelSelect { get; set; } = "val";
    internal int Patience { get; set; } = 5;
    internal double ValFraction { get; set; } = 0.1;
    internal int MaxTiles { get; set; } = 1_000_000;
    internal bool ShuffleTiles { get; set; }
    internal string DType { get; set; } = "float32";
    /// <summary>
    /// Run the CPU kernels on one thread so the same seed gives bit-identical numbers: with several threads libtorch's
    /// GEMM and reductions may split work differently from run to run (under load) and the last bits change.
    /// </summary>
    internal bool Deterministic { get; set; } = true;
    /// <summary>Intra-op threads while training; 0 = one when deterministic, else libtorch's default.</summary>
    internal int Threads { get; set; }
    internal string Device { get; set; } = "cpu";
    /// <summary>
    /// The tile width in level-0 pixels for feature files whose level-0 <c>coords</c> come without the attributes that
    /// place them on the slide encoder's grid (CLAM's feature files); the file's own attributes win.
    /// </summary>
    internal double? PatchSizeLevel0 { get; set; }

    // architecture
    internal int HiddenDim { get; set; } = 256;
    /// <summary>Attention pooling input: "features", or "contextual" (the slide encoder's tile outputs; implied by a slide model).</summary>
    internal string? TileInput { get; set; }
    internal int AttentionDim { get; set; } = 128;
    internal string FeatLayer { get; set; } = "11";
    internal bool GlobalPool { get; set; }
    internal bool Freeze { get; set; }

    // linear probe
    /// <summary>Inverse L2 strength with scikit-learn's meaning: loss = mean cross-entropy + ||W||² / (2 C n).</summary>
    internal double C { get; set; } = 1.0;
    internal int MaxIter { get; set; } = 500;
    internal bool Standardize { get; set; } = true;
    internal string SlideInput { get; set; } = "auto";

    // task
    internal string TaskName { get; set; } = "task";
    internal IReadOnlyList<string>? Classes { get; set; }
    internal bool? Graded { get; set; }

    /// <summary>The defaults of <paramref name="head"/>'s recipe.</summary>
    /// <param name="head">The head to train.</param>
    public TrainingOptions(HeadKind head)
    {
        if (!Enum.IsDefined(head)) throw new ArgumentOutOfRangeException(nameof(head), head, "not a head kind");
        Head = head;
        switch (head)
        {
            case HeadKind.Abmil:
                Epochs = 20; Lr = 2e-4; WeightDecay = 1e-5; Dropout = 0.25; Accumulate = 1;
                break;
            case HeadKind.Slide:
                // The reference's PANDA recipe (scripts/run_panda.sh): blr 2e-3, gc 32, wd 0.05, layer decay 0.95,
                // 5 epochs with 1 warm-up epoch, dropout 0.1, layer 11, tiles shuffled.
                Epochs = 5; Lr = null; BaseLr = 2e-3; WeightDecay = 0.05; Dropout = 0.1; Accumulate = 32; ShuffleTiles = true;
                break;
            case HeadKind.Linear:
                Epochs = 0;
                break;
        }
    }

    internal double EffectiveLr => Lr ?? BaseLr * Accumulate / 256.0;

    /// <summary>All keys <see cref="Set"/> accepts.</summary>
    public static IReadOnlyList<string> Keys => KeyList;

    private static readonly string[] KeyList =
    [
        "folds", "seed", "epochs", "warmup_epochs", "lr", "blr", "min_lr", "lr_scheduler", "weight_decay", "layer_decay",
        "accumulate", "dropout", "class_weights", "model_select", "patience", "val_fraction", "max_tiles", "shuffle_tiles",
        "dtype", "device", "patch_size_level0", "deterministic", "threads", "hidden_dim", "tile_input", "attention_dim", "feat_layer", "global_pool", "freeze", "c", "max_iter",
        "standardize", "slide_input", "classes", "graded", "name",
    ];

    /// <summary>
    /// Sets one option from its text, as a task file writes it: numbers in invariant culture, booleans as
    /// true/false (yes/no, 1/0, on/off), lists as <c>a,b</c> or <c>[a, b]</c>.
    /// </summary>
    /// <param name="key">One of <see cref="Keys"/> (any case; dashes or underscores).</param>
    /// <param name="value">The value's text.</param>
    /// <param name="source">Where the value came from (a file and line, a command-line option), named in errors; null names the key.</param>
    /// <exception cref="GigaPathException">Unknown key or invalid value; the message names <paramref name="source"/>.</exception>
    public void Set(string key, string value, string? source = null)
    {
        ArgumentNullException.ThrowIfNull(key);
        ArgumentNullException.ThrowIfNull(value);
        string where = source ?? $"option '{key}'";
        var k = key.Trim().ToLowerInvariant().Replace('-', '_');
        switch (k)
        {
            case "folds": Folds = Int(value, where, 2); break;
            case "seed": Seed = Int(value, where, int.MinValue); break;
            case "epochs": Epochs = Int(value, where, 1); break;
            case "warmup_epochs": WarmupEpochs = Double(value, where, 0); break;
            case "lr": Lr = Double(value, where, 0); break;
            case "blr": BaseLr = Double(value, where, 0); Lr = null; break;
            case "min_lr": MinLr = Double(value, where, 0); break;
            case "lr_scheduler": LrScheduler = Choice(value, where, "cosine", "fixed"); break;
            case "weight_decay": WeightDecay = Double(value, where, 0); break;
            case "layer_decay": LayerDecay = Double(value, where, 0, 1); break;
            case "accumulate" or "gc": Accumulate = Int(value, where, 1); break;
            case "dropout": Dropout = Double(value, where, 0, 0.999); break;
            case "class_weights": ClassWeights = Choice(value, where, "balanced", "none"); break;
            case "model_select": ModelSelect = Choice(value, where, "val", "last_epoch"); break;
            case "patience": Patience = Int(value, where, 0); break;
            case "val_fraction" or "val_r": ValFraction = Double(value, where, 0, 0.9); break;
            case "max_tiles": MaxTiles = Int(value, where, 1); break;
            case "shuffle_tiles": ShuffleTiles = Bool(value, where); break;
            case "dtype": DType = Choice(value, where, "float32", "bfloat16", "fp32", "bf16"); break;
            case "device": Device = value.Trim(); break;
            case "patch_size_level0": PatchSizeLevel0 = Double(value, where, double.Epsilon); break;
            case "deterministic": Deterministic = Bool(value, where); break;
            case "threads": Threads = Int(value, where, 0); break;
            case "hidden_dim": HiddenDim = Int(value, where, 1); break;
            case "tile_input": TileInput = Choice(value, where, "features", "contextual"); break;
            case "attention_dim": AttentionDim = Int(value, where, 1); break;
            case "feat_layer": FeatLayers.Parse(value); FeatLayer = value.Trim(); break;
            case "global_pool": GlobalPool = Bool(value, where); break;
            case "freeze": Freeze = Bool(value, where); break;
            case "c": C = Double(value, where, double.Epsilon); break;
            case "max_iter": MaxIter = Int(value, where, 1); break;
            case "standardize": Standardize = Bool(value, where); break;
            case "slide_input": SlideInput = Choice(value, where, "auto", "mean", "stored"); break;
            case "classes": Classes = List(value); break;
            case "graded": Graded = Bool(value, where); break;
            case "name": TaskName = value.Trim(); break;
            default:
                throw new GigaPathException($"{where}: unknown option '{key}' (known: {string.Join(", ", KeyList)})");
        }
    }

    /// <summary>
    /// Applies a task file: <c>key: value</c> lines (a YAML subset: comments, quoted values, inline lists) or a JSON
    /// object of options, each through <see cref="Set"/>; errors name the file and line.
    /// </summary>
    /// <param name="path">The task file.</param>
    /// <exception cref="GigaPathException">The file is missing, malformed, or sets an unknown key or invalid value.</exception>
    public void ApplyFile(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        foreach (var (key, value, where) in TaskConfigFile.Read(path))
            Set(key, value, where);
    }

    /// <summary>The settings as strings, for the report.</summary>
    internal IReadOnlyDictionary<string, string> Describe() => new SortedDictionary<string, string>(StringComparer.Ordinal)
    {
        ["name"] = TaskName, ["head"] = Head.ToString().ToLowerInvariant(), ["folds"] = Inv(Folds), ["seed"] = Inv(Seed), ["epochs"] = Inv(Epochs),
        ["warmup_epochs"] = Inv(WarmupEpochs), ["lr"] = Inv(EffectiveLr), ["min_lr"] = Inv(MinLr), ["lr_scheduler"] = LrScheduler,
        ["weight_decay"] = Inv(WeightDecay), ["layer_decay"] = Inv(LayerDecay), ["accumulate"] = Inv(Accumulate),
        ["dropout"] = Inv(Dropout), ["class_weights"] = ClassWeights, ["model_select"] = ModelSelect, ["patience"] = Inv(Patience),
        ["val_fraction"] = Inv(ValFraction), ["max_tiles"] = Inv(MaxTiles), ["shuffle_tiles"] = Inv(ShuffleTiles),
        ["dtype"] = DType, ["device"] = Device, ["deterministic"] = Inv(Deterministic), ["threads"] = Inv(Threads), ["hidden_dim"] = Inv(HiddenDim), ["tile_input"] = TileInput ?? "features", ["attention_dim"] = Inv(AttentionDim),
        ["feat_layer"] = FeatLayer, ["global_pool"] = Inv(GlobalPool), ["freeze"] = Inv(Freeze), ["c"] = Inv(C),
        ["max_iter"] = Inv(MaxIter), ["standardize"] = Inv(Standardize), ["slide_input"] = SlideInput,
    };

    private static string Inv(object o) => o switch
    {
        double d => d.ToString("R", CultureInfo.InvariantCulture),
        bool b => b ? "true" : "false",
        _ => Convert.ToString(o, CultureInfo.InvariantCulture) ?? "",
    };

    private static int Int(string v, string where, int min)
    {
        if (!int.TryParse(v.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture, out int r))
            throw new GigaPathException($"{where}: '{v}' is not an integer");
        if (r < min) throw new GigaPathException($"{where}: {r} is below the minimum {min}");
        return r;
    }

    private static double Double(string v, string where, double min, double max = double.MaxValue)
    {
        if (!double.TryParse(v.Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double r) || !double.IsFinite(r))
            throw new GigaPathException($"{where}: '{v}' is not a number");
        if (r < min || r > max) throw new GigaPathException($"{where}: {r} lies outside [{min}, {max}]");
        return r;
    }

    private static bool Bool(string v, string where) => v.Trim().ToLowerInvariant() switch
    {
        "true" or "yes" or "1" or "on" => true,
        "false" or "no" or "0" or "off" => false,
        _ => throw new GigaPathException($"{where}: '{v}' is not a boolean (true/false)"),
    };

    private static string Choice(string v, string where, params string[] allowed)
    {
        var t = v.Trim().ToLowerInvariant();
        if (!allowed.Contains(t)) throw new GigaPathException($"{where}: '{v}' is not one of {string.Join(", ", allowed)}");
        return t switch { "fp32" => "float32", "bf16" => "bfloat16", _ => t };
    }

    private static List<string> List(string v)
    {
        var t = v.Trim();
        if (t.StartsWith('[') && t.EndsWith(']')) t = t[1..^1];
        return t.Split(',').Select(s => s.Trim().Trim('"', '\'')).Where(s => s.Length > 0).ToList();
    }
}
