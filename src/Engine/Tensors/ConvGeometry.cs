using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace SlidePlugin.Engine.Tensors;

/// <summary>
/// Shapes of one 2-D convolution and the im2col / col2im transforms between images and the GEMM's column matrix.
/// The column matrix for a chunk of images is [C·KH·KW, count·OH·OW]: row (c, ki, kj), column (image, oh, ow).
/// </summary>
internal readonly record struct ConvGeometry(
    int Channels, int Height, int Width, int OutChannels, int KernelHeight, int KernelWidth,
    int Stride, int Padding, int OutHeight, int OutWidth)
{
    /// <summary>C·KH·KW: rows of the column matrix, columns of the weight matrix.</summary>
    public int Patch => Channels * KernelHeight * KernelWidth;

    /// <summary>OH·OW: output positions per image.</summary>
    public int Positions => OutHeight * OutWidth;

    private int ImageSize => Channels * Height * Width;

    public static ConvGeometry Create(Tensor x, Tensor weight, int stride, int padding)
    {
        if (x.Rank != 4 || weight.Rank != 4)
        {
            throw new ArgumentException($"conv2d: input {Tensor.ShapeText(x.Shape)} must be [N, C, H, W] and weight {Tensor.ShapeText(weight.Shape)} [O, C, KH, KW].");
        }

        if (x.Shape[1] != weight.Shape[1])
        {
            throw new ArgumentException($"conv2d: input has {x.Shape[1]} channels; the weight {Tensor.ShapeText(weight.Shape)} expects {weight.Shape[1]}.");
        }

        ArgumentOutOfRangeException.ThrowIfLessThan(stride, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(padding);
        int outHeight = ((x.Shape[2] + (2 * padding) - weight.Shape[2]) / stride) + 1;
        int outWidth = ((x.Shape[3] + (2 * padding) - weight.Shape[3]) / stride) + 1;
        if (x.Shape[2] + (2 * padding) < weight.Shape[2] || x.Shape[3] + (2 * padding) < weight.Shape[3])
        {
            throw new ArgumentException(
                $"conv2d: a {weight.Shape[2]}x{weight.Shape[3]} kernel does not fit a {x.Shape[2]}x{x.Shape[3]} input with padding {padding}.");
        }

        return new(x.Shape[1], x.Shape[2], x.Shape[3], weight.Shape[0], weight.Shape[2], weight.Shape[3], stride, padding, outHeight, outWidth);
    }

    /// <summary>How many images share one column matrix, so it stays about <c>1 &lt;&lt; 20</c> floats.</summary>
    public int ImagesPerChunk(int images) => Math.Clamp((1 << 20) / Math.Max(1, Patch * Positions), 1, Math.Max(1, images));

    /// <summary>im2col of images first..first+count of <paramref name="images"/> ([N, C, H, W]) into <paramref name="columns"/>.</summary>
    public void ImagesToColumns(float[] images, int first, int count, float[] columns) =>
        TransferChunk(images, columns, first, count, toColumns: true);

    /// <summary>col2im: adds the column matrix back onto images first..first+count of <paramref name="images"/>.</summary>
    public void ColumnsToImages(float[] columns, float[] images, int first, int count) =>
        TransferChunk(images, columns, first, count, toColumns: false);

    private unsafe void TransferChunk(float[] images, float[] columns, int first, int count, bool toColumns)
    {
        if ((long)(first + count) * ImageSize > images.Length || (long)Patch * count * Positions > columns.Length)
        {
            throw new ArgumentException("im2col buffers are too small for the chunk.");
        }

        fixed (float* imageData = images)
        fixed (float* columnData = columns)
        {
            for (int c = 0; c < Channels; c++)
            {
                for (int i = 0; i < count; i++)
                {
                    Transfer(imageData + ((long)(first + i) * ImageSize), columnData + ((long)i * Positions), count * Positions, toColumns, c);
                }
            }
        }
    }

    /// <summary>
    /// Moves one channel of one image's patches between the image and its columns of the matrix (<paramref name="columns"/> points at
    /// this image's first column; rows are <paramref name="rowLength"/> apart): copies them in (im2col) or adds them
    /// back (col2im). Padding reads as zero and receives nothing. Pointer code: these loops run millions of times on
    /// rows of 8 to 24 floats, where span slicing and memmove calls cost more than the copying (measured 4x).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)] // hot kernel: optimised from the first call, not after tiering
    private unsafe void Transfer(float* image, float* columns, int rowLength, bool toColumns, int channel)
    {
        int height = Height, width = Width, outHeight = OutHeight, outWidth = OutWidth, stride = Stride, padding = Padding;
        int c = channel; // one channel of one image per call: the chunk is filled channel by channel, so writes stay close together
        float* plane = image + ((long)c * height * width);
        for (int ki = 0; ki < KernelHeight; ki++)
        {
            for (int kj = 0; kj < KernelWidth; kj++)
            {
                long row = (((long)c * KernelHeight) + ki) * KernelWidth + kj;
                float* line = columns + (row * rowLength);
                // Output columns whose input column iw = ow·stride − padding + kj lies inside the image.
                int firstColumn = Math.Clamp(CeilDiv(padding - kj, stride), 0, outWidth);
                int endColumn = Math.Clamp(CeilDiv(width + padding - kj, stride), firstColumn, outWidth);
                int inside = endColumn - firstColumn;
                for (int oh = 0; oh < outHeight; oh++)
                {
                    float* outRow = line + ((long)oh * outWidth);
                    int ih = (oh * stride) - padding + ki;
                    if (ih < 0 || ih >= height || inside == 0)
                    {
                        if (toColumns)
                        {
                            new Span<float>(outRow, outWidth).Clear();
                        }

                        continue;
                    }

                    // Only padding leaves cells to clear; without it these calls ran millions of times for nothing.
                    if (toColumns && inside < outWidth)
                    {
                        new Span<float>(outRow, firstColumn).Clear();
                        new Span<float>(outRow + endColumn, outWidth - endColumn).Clear();
                    }

                    float* inRow = plane + ((long)ih * width) + ((firstColumn * stride) - padding + kj);
                    float* cells = outRow + firstColumn;
                    if (stride == 1)
                    {
                        if (toColumns)
                        {
                            Copy(inRow, cells, inside);
                        }
                        else
                        {
                            AddTo(cells, inRow, inside);
                        }
                    }
                    else
                    {
                        for (int k = 0; k < inside; k++)
                        {
                            if (toColumns)
                            {
                                cells[k] = inRow[k * stride];
                            }
                            else
                            {
                                inRow[k * stride] += cells[k];
                            }
                        }
                    }
                }
            }
        }
    }

    /// <summary>Copies a short run with 8-float vectors; the last vector may overlap the previous one (rows of 8-30 floats, millions of them a bag).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal static unsafe void Copy(float* source, float* destination, int length)
    {
        if (length < Vector256<float>.Count)
        {
            for (int k = 0; k < length; k++)
            {
                destination[k] = source[k];
            }

            return;
        }

        int last = length - Vector256<float>.Count;
        for (int k = 0; k < last; k += Vector256<float>.Count)
        {
            Vector256.Store(Vector256.Load(source + k), destination + k);
        }

        Vector256.Store(Vector256.Load(source + last), destination + last);
    }

    /// <summary>destination += source over a short run.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static unsafe void AddTo(float* source, float* destination, int length)
    {
        int k = 0;
        for (; k + Vector256<float>.Count <= length; k += Vector256<float>.Count)
        {
            Vector256.Store(Vector256.Load(destination + k) + Vector256.Load(source + k), destination + k);
        }

        for (; k < length; k++)
        {
            destination[k] += source[k];
        }
    }

    private static int CeilDiv(int value, int divisor) => value <= 0 ? -(-value / divisor) : ((value + divisor - 1) / divisor);
}
