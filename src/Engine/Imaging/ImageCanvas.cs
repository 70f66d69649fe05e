using System.Globalization;
using SlidePlugin.Engine.Interop;

namespace SlidePlugin.Engine.Imaging;

/// <summary>How <see cref="ImageCanvas.SaveTiffPyramid"/> writes a slide.</summary>
public sealed record TiffPyramidOptions
{
    /// <summary>Tile edge in pixels.</summary>
    public int TileSize { get; init; } = 256;

    /// <summary>JPEG quality of the tiles (1-100).</summary>
    public int Quality { get; init; } = 85;

    /// <summary>Level-0 µm per pixel written as the TIFF resolution tags (unit cm), or null for none.</summary>
    public double? Mpp { get; init; }
}

/// <summary>
/// A large RGB image composed lazily by libvips: a background colour with rasters pasted on it, never
/// held in memory whole. It is written as a JPEG-tiled pyramidal TIFF that OpenSlide opens as a
/// generic-tiff slide, which is how tests and benchmarks make slides of any size.
/// </summary>
public sealed class ImageCanvas : IDisposable
{
    private VipsImageHandle _image;

    private ImageCanvas(VipsImageHandle image, int width, int height)
    {
        _image = image;
        Width = width;
        Height = height;
    }

    /// <summary>Width in pixels.</summary>
    public int Width { get; }

    /// <summary>Height in pixels.</summary>
    public int Height { get; }

    /// <summary>A <paramref name="width"/> x <paramref name="height"/> canvas of one colour.</summary>
    public static unsafe ImageCanvas Create(int width, int height, byte red, byte green, byte blue)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(width, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(height, 1);
        ImageCodec.EnsureInitialized();
        int result = VipsNative.Black(out IntPtr black, width, height, "bands", 3, IntPtr.Zero);
        using VipsImageHandle zeros = ImageCodec.Take(result, black, "make a canvas");
        double* scale = stackalloc double[] { 1, 1, 1 };
        double* offset = stackalloc double[] { red, green, blue };
        result = VipsNative.Linear(zeros, out IntPtr coloured, scale, offset, 3, "uchar", 1, IntPtr.Zero);
        return new ImageCanvas(ImageCodec.Take(result, coloured, "colour a canvas"), width, height);
    }

    /// <summary>Pastes an RGB <paramref name="raster"/> with its top-left corner at (<paramref name="x"/>, <paramref name="y"/>); parts outside are clipped.</summary>
    public void Insert(Raster raster, int x, int y)
    {
        ArgumentNullException.ThrowIfNull(raster);
        ObjectDisposedException.ThrowIf(_image.IsClosed, this);
        if (raster.Bands != 3)
        {
            throw new ArgumentException($"A canvas takes RGB rasters, not {raster.Bands} bands.", nameof(raster));
        }

        using VipsImageHandle sub = ImageCodec.FromRaster(raster);
        int result = VipsNative.Insert(_image, sub, out IntPtr output, x, y, IntPtr.Zero);
        VipsImageHandle inserted = ImageCodec.Take(result, output, "insert a raster");
        _image.Dispose();
        _image = inserted;
    }

    /// <summary>
    /// Writes a tiled, JPEG-compressed, pyramidal TIFF (each level half the previous) to <paramref name="path"/>,
    /// through a temporary file renamed into place, so a failure never leaves a partial slide.
    /// </summary>
    /// <exception cref="ImageCodecException">libvips could not write the file; the message says why.</exception>
    public void SaveTiffPyramid(string path, TiffPyramidOptions? options = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ObjectDisposedException.ThrowIf(_image.IsClosed, this);
        options ??= new TiffPyramidOptions();
        ArgumentOutOfRangeException.ThrowIfLessThan(options.TileSize, 16);
        ArgumentOutOfRangeException.ThrowIfNotEqual(options.TileSize % 16, 0);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.Quality, 1);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(options.Quality, 100);

        // libvips options ride in the file name; xres/yres are pixels per mm whatever unit the file records.
        string resolution = options.Mpp is { } mpp && mpp > 0
            ? string.Create(CultureInfo.InvariantCulture, $",resunit=cm,xres={1000 / mpp:R},yres={1000 / mpp:R}")
            : string.Empty;
        string saveOptions = string.Create(CultureInfo.InvariantCulture,
            $"[tile,pyramid,compression=jpeg,Q={options.Quality},tile_width={options.TileSize},tile_height={options.TileSize}{resolution}]");
        // The ".tif" suffix makes libvips pick its TIFF saver.
        IO.AtomicFile.Write(Path.GetFullPath(path), ".tif", temporary =>
        {
            if (VipsNative.ImageWriteToFile(_image, temporary + saveOptions, IntPtr.Zero) != 0)
            {
                throw new ImageCodecException($"Cannot write '{path}': {ImageCodec.TakeError()}");
            }
        });
    }

    /// <inheritdoc />
    public void Dispose() => _image.Dispose();
}
