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
    /// INVALID_ARGUMENT: RAW bytes that do not match a positive size, or bytes libvips cannot decode; RESOURCE_EXHAUSTED:
    /// more than <paramref name="maxPixels"/> pixels.
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
                    throw new RpcException(new Status(StatusCode.InvalidArgument,
                        $"{what}: RAW data of {image.Data.Length} bytes is not {image.Width}x{image.Height} with 3 or 4 channels."));
                }

                if ((long)image.Width * image.Height > maxPixels)
                {
                    throw new ImageTooLargeException(image.Width, image.Height, maxPixels);
                }

                return new Raster(image.Width, image.Height, image.Channels, image.Data.ToByteArray());
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
}
