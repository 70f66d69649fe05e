using SlidePlugin.Engine.Imaging;
using SlidePlugin.Grpc;
using SlidePlugin.Protos.V1;

namespace SlidePlugin.Sidecar.Services;

/// <summary>Images clients send (<see cref="EncodedImage"/>): decoded once here, a bad one is INVALID_ARGUMENT naming it.</summary>
internal static class EncodedImages
{
    /// <summary>Decodes <paramref name="image"/>; <paramref name="what"/> names it in errors ("Patch 3", "The image").</summary>
    /// <exception cref="RpcException">INVALID_ARGUMENT: RAW bytes that do not match the size, or bytes libvips cannot decode.</exception>
    public static Raster Decode(EncodedImage image, string what)
    {
        ArgumentNullException.ThrowIfNull(image);
        try
        {
            if (image.Format == ImageFormat.Raw)
            {
                if (image.Channels is not (3 or 4) || (long)image.Width * image.Height * image.Channels != image.Data.Length)
                {
                    throw new RpcException(new Status(StatusCode.InvalidArgument,
                        $"{what}: RAW data of {image.Data.Length} bytes is not {image.Width}x{image.Height} with 3 or 4 channels."));
                }

                return new Raster(image.Width, image.Height, image.Channels, image.Data.ToByteArray());
            }

            return ImageCodec.Decode(image.Data.Span);
        }
        catch (ImageCodecException e)
        {
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"{what} cannot be decoded: {e.Message}"));
        }
    }
}
