using System.Globalization;
using SlidePlugin.Engine.Datasets;
using SlidePlugin.Engine.Tensors;

namespace SlidePlugin.Engine.Training;

/// <summary>Which bags train, which choose the best epoch, which measure the final model (indices into the data set).</summary>
public sealed record DataSplit(IReadOnlyList<int> Train, IReadOnlyList<int> Validation, IReadOnlyList<int> Test)
{
    /// <summary>
    /// The split of <paramref name="items"/>: splits fixed by the data set (<c>train</c>/<c>val</c>/<c>test</c>) are
    /// kept; bags without one are divided with <paramref name="testFraction"/>; when no bag is marked <c>val</c>,
    /// <paramref name="validationFraction"/> of the training bags become validation. Both divisions are stratified by
    /// label and seeded, so the same seed gives the same split.
    /// </summary>
    public static DataSplit Create(IReadOnlyList<BagItem> items, double validationFraction, double testFraction, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(items);
        CheckFraction(validationFraction, nameof(validationFraction));
        CheckFraction(testFraction, nameof(testFraction));
        var random = new TensorRandom(seed);
        var train = new List<int>();
        var validation = new List<int>();
        var test = new List<int>();
        var unassigned = new List<int>();
        // A bag without a split of its own goes where another bag of its patient was put.
        var splitOfGroup = items.Where(b => b.Group is not null && b.Split is not null).GroupBy(b => b.Group!, StringComparer.Ordinal)
            .ToDictionary(g => g.Key, g => g.First().Split, StringComparer.Ordinal);
        for (int i = 0; i < items.Count; i++)
        {
            string? split = items[i].Split ?? (items[i].Group is { } group ? splitOfGroup.GetValueOrDefault(group) : null);
            (split switch
            {
                "train" => train,
                "val" => validation,
                "test" => test,
                _ => unassigned,
            }).Add(i);
        }

        (List<int> heldOut, List<int> rest) = Stratified(unassigned, items, testFraction, random);
        test.AddRange(heldOut);
        train.AddRange(rest);
        if (validation.Count == 0)
        {
            (validation, train) = Stratified(train, items, validationFraction, random);
        }

        train.Sort();
        validation.Sort();
        test.Sort();
        return new DataSplit(train, validation, test);
    }

    /// <summary>
    /// Fold <paramref name="fold"/> of <paramref name="folds"/> stratified folds over all bags: that fold is the test set,
    /// and <paramref name="validationFraction"/> of the rest validates. The fold assignment depends only on the seed.
    /// </summary>
    public static DataSplit CreateFold(IReadOnlyList<BagItem> items, int folds, int fold, double validationFraction, ulong seed)
    {
        ArgumentNullException.ThrowIfNull(items);
        ArgumentOutOfRangeException.ThrowIfLessThan(folds, 2);
        ArgumentOutOfRangeException.ThrowIfNegative(fold);
        ArgumentOutOfRangeException.ThrowIfGreaterThanOrEqual(fold, folds);
        CheckFraction(validationFraction, nameof(validationFraction));
        var random = new TensorRandom(seed);
        int[] foldOf = new int[items.Count];
        // Deal each class's shuffled patients (a bag without one is its own) round-robin over the folds: every fold gets
        // its share of each class, and a patient's bags stay in one fold.
        int dealt = 0;
        foreach (IGrouping<int, int[]> byLabel in UnitsOf(items, Enumerable.Range(0, items.Count)).GroupBy(u => LabelOf(items, u)).OrderBy(g => g.Key))
        {
            List<int[]> members = [.. byLabel];
            random.Shuffle(members);
            foreach (int[] member in members)
            {
                int assigned = dealt++ % folds;
                foreach (int bag in member)
                {
                    foldOf[bag] = assigned;
                }
            }
        }

        var test = Enumerable.Range(0, items.Count).Where(i => foldOf[i] == fold).ToList();
        var rest = Enumerable.Range(0, items.Count).Where(i => foldOf[i] != fold).ToList();
        var foldRandom = new TensorRandom(seed + (ulong)fold + 1);
        (List<int> validation, List<int> train) = Stratified(rest, items, validationFraction, foldRandom);
        train.Sort();
        validation.Sort();
        return new DataSplit(train, validation, test);
    }

    /// <summary>
    /// Takes round(fraction · size) of each label's patients (shuffled; a bag without a patient is its own), at least one
    /// when the label has two or more, out of <paramref name="indices"/>, each with all its bags.
    /// </summary>
    private static (List<int> Taken, List<int> Remaining) Stratified(List<int> indices, IReadOnlyList<BagItem> items, double fraction, TensorRandom random)
    {
        var taken = new List<int>();
        var rest = new List<int>();
        foreach (IGrouping<int, int[]> byLabel in UnitsOf(items, indices).GroupBy(u => LabelOf(items, u)).OrderBy(g => g.Key))
        {
            List<int[]> members = [.. byLabel];
            random.Shuffle(members);
            // Every class with two patients or more gets at least one into the set: a set without a class has no AUC for it,
            // and a validation set of one class none at all (NaN every epoch).
            int take = (int)Math.Round(fraction * members.Count);
            if (take == 0 && fraction > 0 && members.Count >= 2)
            {
                take = 1;
            }

            taken.AddRange(members.Take(take).SelectMany(m => m));
            rest.AddRange(members.Skip(take).SelectMany(m => m));
        }

        return (taken, rest);
    }

    /// <summary>
    /// The patients among <paramref name="indices"/>, each as its bags' indices, in the order of their first bag; a bag
    /// without a patient is a patient of its own (so data sets without patients split exactly as bag by bag).
    /// </summary>
    private static List<int[]> UnitsOf(IReadOnlyList<BagItem> items, IEnumerable<int> indices) =>
        [.. indices.Order().GroupBy(i => items[i].Group is { } group ? "g:" + group : "b:" + i.ToString(CultureInfo.InvariantCulture), StringComparer.Ordinal)
            .Select(g => g.ToArray())];

    /// <summary>A patient's label for stratification: the most common among its bags (the smallest on a tie).</summary>
    private static int LabelOf(IReadOnlyList<BagItem> items, int[] unit) =>
        unit.GroupBy(i => items[i].Label).OrderByDescending(g => g.Count()).ThenBy(g => g.Key).First().Key;

    private static void CheckFraction(double value, string name)
    {
        if (value is < 0 or >= 1 || double.IsNaN(value))
        {
            throw new ArgumentOutOfRangeException(name, value, "A fraction of the bags is in [0, 1).");
        }
    }
}
