namespace SlidePlugin.Engine.Slides;

/// <summary>
/// What a file OpenSlide 3.4 refused is, and the way out, from its first bytes: OpenSlide's own reason ("Unsupported or
/// missing image file") does not say that a TIFF in strips needs converting or that DICOM needs OpenSlide 4.
/// </summary>
internal static class UnopenableFile
{
    /// <summary>How to convert an image into a tiled pyramidal TIFF that OpenSlide reads.</summary>
    public const string ConvertCommand = "vips tiffsave INPUT OUTPUT.tiff --tile --pyramid --compression jpeg --Q 90 --tile-width 256 --tile-height 256";

    /// <summary>A sentence naming what the file is and what to do, or null when its first bytes say nothing useful.</summary>
    public static string? Hint(string path)
    {
        byte[] head = new byte[132];
        int read;
        try
        {
            using FileStream file = File.OpenRead(path);
            read = file.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        }
        catch (IOException)
        {
            return null;
        }

        ReadOnlySpan<byte> bytes = head.AsSpan(0, read);
        if (bytes.Length >= 132 && bytes[128..132].SequenceEqual("DICM"u8))
        {
            return "It is a DICOM file: DICOM whole-slide images need OpenSlide 4, and this build has OpenSlide 3.4.1 (Debian 12). " +
                   "Export the slide from your archive as SVS or tiled TIFF, or convert it with " + ConvertCommand + ".";
        }

        if (bytes.StartsWith(new byte[] { 0x89, 0x50, 0x4E, 0x47 }) || bytes.StartsWith(new byte[] { 0xFF, 0xD8, 0xFF }))
        {
            string kind = bytes[0] == 0x89 ? "PNG" : "JPEG";
            return $"It is a plain {kind} image, not a whole-slide image. For one image, upload it (ScoreBag, Segment, the dataset tools); " +
                   $"to use it as a slide, give it a pyramid: {ConvertCommand} (set its µm per pixel with --mpp).";
        }

        if (bytes.StartsWith("II"u8) || bytes.StartsWith("MM"u8))
        {
            IReadOnlyList<TiffDirectory> directories;
            try
            {
                directories = TiffDirectories.Read(path);
            }
            catch (IOException)
            {
                return null;
            }

            if (directories.Count > 0 && directories.All(d => !d.Tiled))
            {
                return "It is a TIFF stored in strips, not tiles: OpenSlide reads tiled TIFF only. Convert it with " + ConvertCommand + ".";
            }
        }

        return null;
    }
}
