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
    public void ImagesToColumns(float[] images, int first, int count, float[] columns)
    {
        ConvGeometry g = this;
        Parallel.For(0, count, EngineThreads.ParallelOptions, i =>
            g.Transfer(images.AsSpan((first + i) * g.ImageSize, g.ImageSize), columns, i, count * g.Positions, toColumns: true));
    }

    /// <summary>col2im: adds the column matrix back onto images first..first+count of <paramref name="images"/>.</summary>
    public void ColumnsToImages(float[] columns, float[] images, int first, int count)
    {
        ConvGeometry g = this;
        Parallel.For(0, count, EngineThreads.ParallelOptions, i =>
            g.Transfer(images.AsSpan((first + i) * g.ImageSize, g.ImageSize), columns, i, count * g.Positions, toColumns: false));
    }

    /// <summary>
    /// Moves one image's patches between the image and its columns of the matrix: copies them in (im2col) or adds
    /// them back (col2im). Padding reads as zero and receives nothing.
    /// </summary>
    private void Transfer(Span<float> image, float[] columns, int imageInChunk, int rowLength, bool toColumns)
    {
        for (int c = 0; c < Channels; c++)
        {
            Span<float> plane = image.Slice(c * Height * Width, Height * Width);
            for (int ki = 0; ki < KernelHeight; ki++)
            {
                for (int kj = 0; kj < KernelWidth; kj++)
                {
                    int row = (((c * KernelHeight) + ki) * KernelWidth) + kj;
                    Span<float> line = columns.AsSpan((row * rowLength) + (imageInChunk * Positions), Positions);
                    // Output columns whose input column iw = ow·stride − padding + kj lies inside the image.
                    int firstColumn = Math.Max(0, CeilDiv(Padding - kj, Stride));
                    int endColumn = Math.Min(OutWidth, CeilDiv(Width + Padding - kj, Stride));
                    for (int oh = 0; oh < OutHeight; oh++)
                    {
                        Span<float> outRow = line.Slice(oh * OutWidth, OutWidth);
                        int ih = (oh * Stride) - Padding + ki;
                        if (ih < 0 || ih >= Height || firstColumn >= endColumn)
                        {
                            if (toColumns)
                            {
                                outRow.Clear();
                            }

                            continue;
                        }

                        Span<float> inRow = plane.Slice(ih * Width, Width);
                        if (toColumns)
                        {
                            outRow[..firstColumn].Clear();
                            outRow[endColumn..].Clear();
                        }

                        int iw0 = (firstColumn * Stride) - Padding + kj;
                        if (Stride == 1)
                        {
                            Span<float> inside = inRow.Slice(iw0, endColumn - firstColumn);
                            Span<float> cells = outRow[firstColumn..endColumn];
                            if (toColumns)
                            {
                                inside.CopyTo(cells);
                            }
                            else
                            {
                                System.Numerics.Tensors.TensorPrimitives.Add(inside, cells, inside);
                            }
                        }
                        else
                        {
                            for (int ow = firstColumn, iw = iw0; ow < endColumn; ow++, iw += Stride)
                            {
                                if (toColumns)
                                {
                                    outRow[ow] = inRow[iw];
                                }
                                else
                                {
                                    inRow[iw] += outRow[ow];
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    private static int CeilDiv(int value, int divisor) => value <= 0 ? -(-value / divisor) : ((value + divisor - 1) / divisor);
}
