using GigaPath.IO;

namespace GigaPath.Training;

/// <summary>A labelled slide whose feature file was found and whose header was checked.</summary>
internal sealed record CohortSlide(LabelRow Row, FeatureFileInfo File);

/// <summary>
/// A labels CSV joined with a folder of feature files, checked before any training starts: every listed slide has a
/// file, every file has the same feature width. Tile features are read lazily and kept in memory up to a budget.
/// </summary>
internal sealed class Cohort
{
    private readonly Dictionary<int, SlideBag> _cache = new();
    private long _cachedBytes;

    public LabelTable Labels { get; }
    public string FeaturesDirectory { get; }
    public IReadOnlyList<CohortSlide> Slides { get; }
    public int Dim { get; }

    /// <summary>Width of the stored slide embeddings when every file has one, else null.</summary>
    public int? SlideEmbeddingDim { get; }

    /// <summary>Width of the stored contextual tile embeddings when every slide has them, else null.</summary>
    public int? ContextualDim => Slides.All(s => s.File.ContextualDim is not null) && Slides.Select(s => s.File.ContextualDim).Distinct().Count() == 1
        ? Slides[0].File.ContextualDim : null;

    /// <summary>Applied to every bag as it is read (and cached after it): e.g. computing contextual tile embeddings.</summary>
    public Func<SlideBag, SlideBag>? Transform { get; set; }

    /// <summary>Bytes of features kept in memory once read (later slides are re-read from their files).</summary>
    public long CacheBudgetBytes { get; set; } = 4L << 30;

    /// <summary>The level-0 tile size for files that do not say how their level-0 coords map to the grid (<c>--patch-size-level0</c>).</summary>
    public double? Level0TileSize { get; set; }

    public IReadOnlyList<int> ClassOf => Slides.Select(s => s.Row.ClassIndex).ToArray();
    public int Count => Slides.Count;

    private Cohort(LabelTable labels, string dir, IReadOnlyList<CohortSlide> slides, int dim, int? slideDim)
    {
        Labels = labels;
        FeaturesDirectory = dir;
        Slides = slides;
        Dim = dim;
        SlideEmbeddingDim = slideDim;
    }

    public static Cohort Load(string labelsPath, string featuresDirectory, IReadOnlyList<string>? classOrder = null)
    {
        var labels = LabelTable.Load(labelsPath, classOrder);
        if (!Directory.Exists(featuresDirectory))
            throw new GigaPathException($"{featuresDirectory}: features folder not found");

        var missing = labels.Rows.Where(r => FeatureFiles.Find(featuresDirectory, r.SlideId) is null).ToList();
        if (missing.Count > 0)
        {
            var shown = string.Join("; ", missing.Take(10).Select(r => $"'{r.SlideId}' (line {r.LineNumber}): no {FeatureFiles.ExpectedPaths(featuresDirectory, r.SlideId)}"));
            throw new GigaPathException($"{labelsPath}: {missing.Count} listed slide(s) have no feature file: {shown}{(missing.Count > 10 ? "; …" : "")}");
        }

        CheckNoAliases(labelsPath, featuresDirectory, labels);
        var slides = labels.Rows.Select(r => new CohortSlide(r, FeatureFiles.Probe(FeatureFiles.Find(featuresDirectory, r.SlideId)!))).ToList();
        var first = slides[0].File;
        var odd = slides.FirstOrDefault(s => s.File.Dim != first.Dim);
        if (odd is not null)
            throw new GigaPathException($"{odd.File.Path}: tile features are {odd.File.Dim} wide but {first.Path} has {first.Dim}; every slide must come from the same tile encoder");
        int? slideDim = slides.All(s => s.File.SlideEmbeddingDim is not null) ? first.SlideEmbeddingDim : null;
        if (slideDim is not null)
        {
            var oddSlide = slides.FirstOrDefault(s => s.File.SlideEmbeddingDim != slideDim);
            if (oddSlide is not null)
                throw new GigaPathException($"{oddSlide.File.Path}: slide_embedding is {oddSlide.File.SlideEmbeddingDim} wide but {first.Path} has {slideDim}");
        }
        return new Cohort(labels, featuresDirectory, slides, first.Dim, slideDim);
    }

    /// <summary>
    /// Two ids whose files are one file (a symbolic or hard link, or letter case on a case-insensitive file system) would put
    /// one slide in several folds, training and testing on it: an error naming the rows.
    /// </summary>
    private static void CheckNoAliases(string labelsPath, string featuresDirectory, LabelTable labels)
    {
        var aliases = labels.Rows
            .Select(r => (Row: r, File: FeatureFiles.Find(featuresDirectory, r.SlideId)!))
            .GroupBy(r => FileIdentity.Stat(r.File).Key)
            .Where(g => g.Key != default && g.Count() > 1)
            .ToList();
        if (aliases.Count == 0) return;
        var shown = aliases.Take(5).Select(g => $"{string.Join(", ", g.Select(r => $"'{r.Row.SlideId}' (line {r.Row.LineNumber})"))} are all {g.First().File}");
        throw new GigaPathException(
            $"{labelsPath}: different slide ids name the same feature file, which would put one slide in several folds: {string.Join("; ", shown)}");
    }

    public SlideBag Bag(int index)
    {
        if (_cache.TryGetValue(index, out var bag)) return bag;
        var s = Slides[index];
        bag = FeatureFiles.Read(s.File.Path, s.Row.SlideId, Level0TileSize);
        if (Transform is not null) bag = Transform(bag);
        long bytes = (bag.Features.LongLength + (bag.Coords?.LongLength ?? 0) + (bag.SlideEmbedding?.LongLength ?? 0) + (bag.Contextual?.LongLength ?? 0)) * sizeof(float);
        if (_cachedBytes + bytes <= CacheBudgetBytes)
        {
            _cache[index] = bag;
            _cachedBytes += bytes;
        }
        return bag;
    }

    /// <summary>
    /// The test folds (from the CSV's fold column, or stratified) after checking that each can be scored: every test
    /// fold holds at least two classes (all of them for a multi-class task) and every training part holds all classes.
    /// </summary>
    public List<Fold> PlanFolds(int folds, double valFraction, int seed)
    {
        var classes = ClassOf;
        int c = Labels.Classes.Count;
        int[] testFold;
        if (Labels.HasFolds)
        {
            var ids = Slides.Select(s => s.Row.Fold!.Value).Distinct().Order().ToArray();
            if (!ids.SequenceEqual(Enumerable.Range(0, ids.Length)))
                throw new GigaPathException($"{Labels.Path}: fold column must number folds 0..K-1 without gaps, found {string.Join(",", ids)}");
            if (ids.Length < 2) throw new GigaPathException($"{Labels.Path}: fold column has a single fold; cross-validation needs at least two");
            folds = ids.Length;
            testFold = Slides.Select(s => s.Row.Fold!.Value).ToArray();
        }
        else
        {
            for (int k = 0; k < c; k++)
            {
                int n = classes.Count(x => x == k);
                if (n < folds)
                    throw new GigaPathException($"{Labels.Path}: class '{Labels.Classes[k]}' has {n} slide(s), fewer than the {folds} folds; use fewer folds or give a fold column");
            }
            testFold = FoldPlan.AssignTestFolds(classes, folds, seed);
        }

        var plan = FoldPlan.Build(classes, testFold, folds, valFraction, seed);
        foreach (var f in plan)
        {
            var present = f.Test.Select(i => classes[i]).Distinct().Order().ToList();
            if (present.Count < 2)
                throw new GigaPathException($"{Labels.Path}: fold {f.Index} tests only class '{Labels.Classes[present.Single()]}' ({f.Test.Length} slides); AUROC needs both classes in every fold");
            var absent = Enumerable.Range(0, c).Except(present).ToList();
            if (absent.Count > 0)
                throw new GigaPathException($"{Labels.Path}: fold {f.Index} has no slide of class(es) {string.Join(", ", absent.Select(a => $"'{Labels.Classes[a]}'"))}; macro AUROC needs every class in every test fold");
            var trainClasses = f.Train.Select(i => classes[i]).Distinct().Count();
            if (trainClasses < c)
                throw new GigaPathException($"{Labels.Path}: the training part of fold {f.Index} lacks a class; every class needs slides outside each test fold");
        }
        return plan;
    }
}
