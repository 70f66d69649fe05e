using SlidePlugin.Engine.Datasets;
using SlidePlugin.Engine.Training;

namespace SlidePlugin.Engine.Tests.Training;

public sealed class ClassificationMetricsTests
{
    [Fact]
    public void RocAuc_SklearnDocumentationExample_Is075()
    {
        // sklearn.metrics.roc_auc_score([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == 0.75
        Assert.Equal(0.75, ClassificationMetrics.RocAuc([false, false, true, true], [0.1, 0.4, 0.35, 0.8]), 12);
    }

    [Fact]
    public void RocAuc_TiesCountHalf_AndOneClassIsUndefined()
    {
        Assert.Equal(0.5, ClassificationMetrics.RocAuc([false, true], [0.3, 0.3]), 12);
        // positives 0.9, 0.5; negatives 0.5, 0.1: pairs won 1+1+1, tied 1 → 3.5 / 4
        Assert.Equal(0.875, ClassificationMetrics.RocAuc([true, true, false, false], [0.9, 0.5, 0.5, 0.1]), 12);
        Assert.True(double.IsNaN(ClassificationMetrics.RocAuc([true, true], [0.2, 0.7])));
    }

    [Fact]
    public void Compute_Binary_ThresholdAtHalfAsIlse()
    {
        int[] labels = [1, 1, 0, 0, 1];
        float[][] probabilities = [[0.2f, 0.8f], [0.5f, 0.5f], [0.6f, 0.4f], [0.3f, 0.7f], [0.9f, 0.1f]];

        ClassificationMetrics m = ClassificationMetrics.Compute(labels, probabilities, loss: 0.3);

        // predicted 1, 1, 0, 1, 0: TP 2, FP 1, FN 1, TN 1
        Assert.Equal(0.6, m.Accuracy, 12);
        Assert.Equal(2 / 3.0, m.Precision, 12);
        Assert.Equal(2 / 3.0, m.Recall, 12);
        Assert.Equal(2 / 3.0, m.F1, 12);
        Assert.Equal(0.3, m.Loss);
    }

    [Fact]
    public void Compute_Multiclass_MacroAverages()
    {
        int[] labels = [0, 1, 2, 2];
        float[][] probabilities = [[0.7f, 0.2f, 0.1f], [0.1f, 0.8f, 0.1f], [0.1f, 0.6f, 0.3f], [0.2f, 0.2f, 0.6f]];

        ClassificationMetrics m = ClassificationMetrics.Compute(labels, probabilities, 0);

        Assert.Equal(0.75, m.Accuracy, 12);
        // precision: c0 1, c1 1/2, c2 1 → 5/6; recall: 1, 1, 1/2 → 5/6
        Assert.Equal(5 / 6.0, m.Precision, 12);
        Assert.Equal(5 / 6.0, m.Recall, 12);
        Assert.Equal(1.0, m.Auc, 12);   // each class's own column ranks its members first
    }

    [Fact]
    public void Compute_MulticlassSetWithoutOneClass_MacroAucOverThePresentClasses()
    {
        // A validation set holding classes 0 and 2 of three: class 1 has no member, so no AUC of its own.
        int[] labels = [0, 0, 2, 2];
        float[][] probabilities = [[0.7f, 0.2f, 0.1f], [0.3f, 0.3f, 0.4f], [0.5f, 0.1f, 0.4f], [0.2f, 0.2f, 0.6f]];

        ClassificationMetrics m = ClassificationMetrics.Compute(labels, probabilities, 0);

        double auc0 = ClassificationMetrics.RocAuc([true, true, false, false], [0.7, 0.3, 0.5, 0.2]);   // 0.75
        double auc2 = ClassificationMetrics.RocAuc([false, false, true, true], [0.1, 0.4, 0.4, 0.6]);   // 0.875
        Assert.Equal((auc0 + auc2) / 2, m.Auc, 12);
        Assert.True(double.IsNaN(ClassificationMetrics.Compute([1, 1], [[0.2f, 0.5f, 0.3f], [0.1f, 0.8f, 0.1f]], 0).Auc));
    }

    [Fact]
    public void DataSplit_Create_SmallClasses_EachClassInValidationAndTest()
    {
        // 3 classes of 2, 3 and 40 bags: 10 % of 2 or 3 rounds to none, and a validation set of one class has no AUC.
        var items = Enumerable.Range(0, 45).Select(i => new BagItem($"b{i}", i < 2 ? 0 : i < 5 ? 1 : 2)).ToList();

        DataSplit split = DataSplit.Create(items, validationFraction: 0.1, testFraction: 0.1, seed: 3);

        Assert.Equal([0, 1, 2], split.Test.Select(i => items[i].Label).Distinct().Order());
        Assert.Equal([1, 2], split.Validation.Select(i => items[i].Label).Distinct().Order());   // class 0 has one bag left: it trains
        Assert.Equal([0, 1, 2], split.Train.Select(i => items[i].Label).Distinct().Order());
        Assert.Equal(4, split.Test.Count(i => items[i].Label == 2));                             // round(0.1 · 40), unchanged
    }

    [Fact]
    public void DataSplit_Create_IsStratifiedDisjointAndSeeded()
    {
        var items = Enumerable.Range(0, 100).Select(i => new BagItem($"b{i}", i % 4 == 0 ? 1 : 0)).ToList();

        DataSplit a = DataSplit.Create(items, validationFraction: 0.1, testFraction: 0.2, seed: 5);
        DataSplit b = DataSplit.Create(items, 0.1, 0.2, seed: 5);
        DataSplit c = DataSplit.Create(items, 0.1, 0.2, seed: 6);

        Assert.Equal(100, a.Train.Count + a.Validation.Count + a.Test.Count);
        Assert.Equal(100, a.Train.Concat(a.Validation).Concat(a.Test).Distinct().Count());
        Assert.Equal(5, a.Test.Count(i => items[i].Label == 1));     // 20% of the 25 positives
        Assert.Equal(15, a.Test.Count(i => items[i].Label == 0));    // 20% of the 75 negatives
        Assert.Equal(a.Test, b.Test);
        Assert.NotEqual(a.Test, c.Test);
    }

    [Fact]
    public void DataSplit_FixedSplits_AreKept()
    {
        var items = new List<BagItem> { new("a", 0, "train"), new("b", 1, "train"), new("c", 0, "test"), new("d", 1, "val") };

        DataSplit split = DataSplit.Create(items, 0.5, 0.5, seed: 1);

        Assert.Equal([0, 1], split.Train);
        Assert.Equal([3], split.Validation);
        Assert.Equal([2], split.Test);
    }

    [Fact]
    public void DataSplit_Folds_EveryBagIsTestedExactlyOnce()
    {
        var items = Enumerable.Range(0, 58).Select(i => new BagItem($"b{i}", i < 26 ? 1 : 0)).ToList();

        var tests = Enumerable.Range(0, 10).Select(f => DataSplit.CreateFold(items, 10, f, validationFraction: 0.1, seed: 2)).ToList();

        Assert.Equal(Enumerable.Range(0, 58), tests.SelectMany(s => s.Test).Order());
        Assert.All(tests, s => Assert.Empty(s.Test.Intersect(s.Train.Concat(s.Validation))));
        Assert.All(tests, s => Assert.InRange(s.Test.Count(i => items[i].Label == 1), 2, 3));   // 26 positives over 10 folds
    }
}
