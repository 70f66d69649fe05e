using SlidePlugin.Engine.Datasets;
using SlidePlugin.Engine.Training;
using SlidePlugin.Tests;

namespace SlidePlugin.Engine.Tests.Training;

/// <summary>Splits that keep a patient's slides together, as CLAM's splits by case_id do.</summary>
public sealed class DataSplitTests
{
    /// <summary>30 slides of 12 patients (1 to 4 each); a patient's slides share its label, half the patients are positive.</summary>
    private static List<BagItem> Slides()
    {
        var items = new List<BagItem>();
        for (int patient = 0; patient < 12; patient++)
        {
            int slides = 1 + (patient * 7 % 4);
            for (int s = 0; s < slides; s++)
            {
                items.Add(new BagItem($"p{patient}-s{s}", patient % 2, Group: $"patient-{patient}"));
            }
        }

        return items;
    }

    [Fact]
    public void CreateFold_SlidesOfPatients_EachPatientInOneFoldAndEverySlideTestedOnce()
    {
        List<BagItem> items = Slides();
        var tested = new List<int>();
        for (int fold = 0; fold < 4; fold++)
        {
            DataSplit split = DataSplit.CreateFold(items, 4, fold, validationFraction: 0.2, seed: 9);
            var testPatients = split.Test.Select(i => items[i].Group).ToHashSet();
            var trainPatients = split.Train.Concat(split.Validation).Select(i => items[i].Group).ToHashSet();

            Assert.Empty(testPatients.Intersect(trainPatients));
            Assert.Empty(split.Train.Select(i => items[i].Group).Intersect(split.Validation.Select(i => items[i].Group)));
            Assert.Contains(split.Test, i => items[i].Label == 0);
            Assert.Contains(split.Test, i => items[i].Label == 1);
            tested.AddRange(split.Test);
        }

        Assert.Equal(Enumerable.Range(0, items.Count), tested.Order());
    }

    [Fact]
    public void Create_SlidesOfPatients_NoPatientInTwoSplitsAndAFixedSplitCarriesItsPatient()
    {
        List<BagItem> items = Slides();
        items[0] = items[0] with { Split = "test" }; // patient-0's first slide is fixed to test: its others follow

        DataSplit split = DataSplit.Create(items, validationFraction: 0.2, testFraction: 0.25, seed: 4);

        string?[][] patients = [.. new[] { split.Train, split.Validation, split.Test }.Select(s => s.Select(i => items[i].Group).Distinct().ToArray())];
        Assert.Empty(patients[0].Intersect(patients[1]));
        Assert.Empty(patients[0].Intersect(patients[2]));
        Assert.Empty(patients[1].Intersect(patients[2]));
        Assert.All(items.Select((b, i) => (b, i)).Where(p => p.b.Group == "patient-0"), p => Assert.Contains(p.i, split.Test));
        Assert.Equal(items.Count, split.Train.Count + split.Validation.Count + split.Test.Count);
    }

    [Fact]
    public void Create_SlidesWithoutPatients_SplitAsIfEachWereItsOwnPatient()
    {
        List<BagItem> alone = [.. Slides().Select(b => b with { Group = null })];
        List<BagItem> ownPatient = [.. alone.Select(b => b with { Group = b.Id })];

        Assert.Equal(DataSplit.Create(alone, 0.2, 0.25, 4), DataSplit.Create(ownPatient, 0.2, 0.25, 4), new SplitComparer());
        Assert.Equal(DataSplit.CreateFold(alone, 5, 2, 0.2, 4), DataSplit.CreateFold(ownPatient, 5, 2, 0.2, 4), new SplitComparer());
    }

    [Fact]
    public void SlideBags_HeaderWithCaseIdColumn_SlidesCarryTheirPatient()
    {
        string folder = Directory.CreateTempSubdirectory("slideplugin-case-id").FullName;
        try
        {
            foreach (string name in new[] { "a.svs", "b.svs", "c.svs" })
            {
                File.CreateSymbolicLink(Path.Combine(folder, name), TestData.Path("slides", "CMU-1-Small-Region.svs"));
            }

            string csv = Path.Combine(folder, "slides.csv");
            File.WriteAllLines(csv, ["case_id,slide_id,label", "TCGA-01,a.svs,tumour", "TCGA-01,b.svs,tumour", "TCGA-02,c.svs,normal"]);

            var bags = new SlideBags(csv, mpp: 2.0, patchSize: 32);

            Assert.Equal(["TCGA-01", "TCGA-01", "TCGA-02"], bags.Items.Select(b => b.Group));
            Assert.Equal(["normal", "tumour"], bags.Classes);
            Assert.Equal([1, 1, 0], bags.Items.Select(b => b.Label));
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    private sealed class SplitComparer : IEqualityComparer<DataSplit>
    {
        public bool Equals(DataSplit? x, DataSplit? y) =>
            x is not null && y is not null && x.Train.SequenceEqual(y.Train) && x.Validation.SequenceEqual(y.Validation) && x.Test.SequenceEqual(y.Test);

        public int GetHashCode(DataSplit obj) => obj.Train.Count;
    }
}
