using System.Buffers.Binary;
using System.IO.Compression;

namespace SlidePlugin.Engine.Datasets;

/// <summary>MNIST images and labels in their original idx format (optionally gzip-compressed).</summary>
public sealed record MnistIdx(byte[] Images, byte[] Labels, int Count, int Rows, int Columns)
{
    /// <summary>
    /// Reads <c>train-images-idx3-ubyte[.gz]</c> and <c>train-labels-idx1-ubyte[.gz]</c> (or the <c>t10k-</c> pair when
    /// <paramref name="train"/> is false) from <paramref name="folder"/>.
    /// </summary>
    /// <exception cref="DatasetException">A file is missing, truncated or not idx; the message names it.</exception>
    public static MnistIdx Load(string folder, bool train)
    {
        string prefix = train ? "train" : "t10k";
        byte[] images = ReadIdx(Find(folder, $"{prefix}-images-idx3-ubyte"), magic: 0x0803, out int[] imageShape);
        byte[] labels = ReadIdx(Find(folder, $"{prefix}-labels-idx1-ubyte"), magic: 0x0801, out int[] labelShape);
        if (imageShape[0] != labelShape[0])
        {
            throw new DatasetException($"MNIST in '{folder}': {imageShape[0]} {prefix} images but {labelShape[0]} labels.");
        }

        return new MnistIdx(images, labels, imageShape[0], imageShape[1], imageShape[2]);
    }

    private static string Find(string folder, string name)
    {
        foreach (string candidate in new[] { name, name + ".gz" })
        {
            string path = Path.Combine(folder, candidate);
            if (File.Exists(path))
            {
                return path;
            }
        }

        throw new DatasetException($"MNIST file '{Path.Combine(folder, name)}[.gz]' does not exist.");
    }

    private static byte[] ReadIdx(string path, int magic, out int[] shape)
    {
        try
        {
            using Stream file = File.OpenRead(path);
            using Stream stream = path.EndsWith(".gz", StringComparison.Ordinal) ? new GZipStream(file, CompressionMode.Decompress) : file;
            Span<byte> header = stackalloc byte[4];
            stream.ReadExactly(header);
            int found = BinaryPrimitives.ReadInt32BigEndian(header);
            if (found != magic)
            {
                throw new DatasetException($"'{path}' is not an idx file of type 0x{magic:X4} (magic 0x{found:X8}).");
            }

            int rank = magic & 0xFF;
            shape = new int[rank];
            long size = 1;
            for (int i = 0; i < rank; i++)
            {
                stream.ReadExactly(header);
                shape[i] = BinaryPrimitives.ReadInt32BigEndian(header);
                if (shape[i] <= 0)
                {
                    throw new DatasetException($"'{path}': dimension {i} is {shape[i]}.");
                }

                size *= shape[i];
            }

            if (size > Array.MaxLength)
            {
                throw new DatasetException($"'{path}' claims {size} values, more than can be held.");
            }

            byte[] values = new byte[size];
            stream.ReadExactly(values);
            return values;
        }
        catch (Exception e) when (e is EndOfStreamException or IOException or InvalidDataException)
        {
            throw new DatasetException($"'{path}' is truncated or corrupt: {e.Message}", e);
        }
    }
}
