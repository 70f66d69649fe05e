using SlidePlugin.Engine.Imaging;

namespace SlidePlugin.Engine.Tests.Imaging;

public class RasterTests
{
    [Fact]
    public void Flatten_PartlyTransparent_RoundsAsPil()
    {
        var rgba = new Raster(3, 1, 4, [10, 20, 30, 255, 10, 20, 30, 0, 200, 100, 0, 128]);

        Raster rgb = rgba.Flatten((255, 255, 255));

        // PIL: DIV255(src * a + dst * (255 - a)) -> (200*128 + 255*127 + 128) / 255 ... rounded to nearest.
        Assert.Equal(new byte[] { 10, 20, 30, 255, 255, 255, 227, 177, 127 }, rgb.Pixels);
    }

    [Fact]
    public void Flatten_RgbRaster_Refused()
    {
        var rgb = new Raster(1, 1, 3, [1, 2, 3]);

        Assert.Throws<InvalidOperationException>(() => rgb.Flatten((0, 0, 0)));
    }
}
