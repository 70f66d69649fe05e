using SlidePlugin.Engine.Imaging;
using Grpc.Core;
using SlidePlugin.Protos.V1;

namespace SlidePlugin.Sidecar.Services;

/// <summary>Images clients send (<see cref="EncodedImage"/>): decoded once here, a bad one is INVALID_ARGUMENT naming it.</summary>
internal static class EncodedImages
{
    /// <summary>The most pixels of one image a client may send (a 8192 x 8192 mask or image; 200 MB as RGB).</summary>
    public const long MaxPixels = 8192L * 8192;

    /// <summary>
    /// Decodes <paramref name="image"/>; <paramref name="what"/> names it in errors ("Patch 3", "The image"). The size is
    /// checked from the header (or the RAW fields) before any pixel is decoded.
    /// </summary>
    /// <exception cref="RpcException">
    /// INVALID_ARGUMENT: RAW bytes that do not match a positive size, PNG or JPEG declared for bytes that are not one, or
    /// bytes libvips cannot decode; RESOURCE_EXHAUSTED: more than <paramref name="maxPixels"/> pixels.
    /// </exception>
    public static Raster Decode(EncodedImage image, string what, long maxPixels = MaxPixels)
    {
        ArgumentNullException.ThrowIfNull(image);
        try
        {
            if (image.Format == ImageFormat.Raw)
            {
                if (image.Width < 1 || image.Height < 1 || image.Channels is not (3 or 4)
                    || (long)image.Width * image.Height * image.Channels != image.Data.Length)
                {
                    // Encoded bytes sent as RAW rarely match the size by chance: say what they are.
                    string encoded = FormatOf(image.Data.Span) is { } actual ? $" (the bytes are a {actual}: declare IMAGE_FORMAT_{(actual is "PNG" or "JPEG" ? actual : "UNSPECIFIED")})" : "";
                    throw new RpcException(new Status(StatusCode.InvalidArgument,
                        $"{what}: RAW data of {image.Data.Length} bytes is not {image.Width}x{image.Height} with 3 or 4 channels{encoded}."));
                }

                if ((long)image.Width * image.Height > maxPixels)
                {
                    throw new ImageTooLargeException(image.Width, image.Height, maxPixels);
                }

                return new Raster(image.Width, image.Height, image.Channels, image.Data.ToByteArray());
            }

            if (image.Format is ImageFormat.Png or ImageFormat.Jpeg)
            {
                // libvips decodes whatever the bytes are: a declared format that does not match them is the client's mistake
                // (a mislabelled file, a wrong field), refused rather than guessed around. Undeclared (UNSPECIFIED) is decoded as it is.
                string declared = image.Format == ImageFormat.Png ? "PNG" : "JPEG";
                string? actual = FormatOf(image.Data.Span);
                if (actual is not null && actual != declared)
                {
                    throw new RpcException(new Status(StatusCode.InvalidArgument, $"{what} is declared {declared} (IMAGE_FORMAT_{declared}) but its bytes are a {actual}."));
                }

                if (actual is null)
                {
                    string bytes = image.Data.IsEmpty ? "empty" : $"not an image format the server knows (they begin {Convert.ToHexString(image.Data.Span[..Math.Min(8, image.Data.Length)])})";
                    throw new RpcException(new Status(StatusCode.InvalidArgument, $"{what} cannot be decoded: it is declared {declared} (IMAGE_FORMAT_{declared}) but its bytes are {bytes}."));
                }
            }

            return ImageCodec.Decode(image.Data.Span, maxPixels);
        }
        catch (ImageCodecException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"{what} cannot be decoded: {e.Message}"));
        }
        catch (ImageTooLargeException e)
        {
            throw new RpcException(new Status(StatusCode.ResourceExhausted, $"{what}: {e.Message}"));
        }
    }

    /// <summary>What encoded bytes are, from their signature: PNG, JPEG, TIFF, GIF or WebP; null for anything else.</summary>
    internal static string? FormatOf(ReadOnlySpan<byte> data) => data switch
    {
        [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, ..] => "PNG",
        [0xFF, 0xD8, 0xFF, ..] => "JPEG",
        [0x49, 0x49, 0x2A or 0x2B, 0x00, ..] or [0x4D, 0x4D, 0x00, 0x2A or 0x2B, ..] => "TIFF",
        [0x47, 0x49, 0x46, 0x38, ..] => "GIF",
        [0x52, 0x49, 0x46, 0x46, _, _, _, _, 0x57, 0x45, 0x42, 0x50, ..] => "WebP",
        _ => null,
    };
}
