using SlidePlugin.Sidecar.Services;

namespace SlidePlugin.Sidecar.Tests.Services;

public sealed class ResponseChunksTests
{
    private const int Max = ResponseChunks.MaxBytes;

    [Theory]
    [InlineData(0, new[] { 0 })]                         // an empty output is still sent once
    [InlineData(10, new[] { 10 })]
    [InlineData(Max, new[] { Max })]                     // exactly one full piece, no empty tail
    [InlineData((2 * Max) + 3, new[] { Max, Max, 3 })]
    public void Of_Sizes_ConsecutivePiecesUnderTheLimit(int total, int[] lengths)
    {
        (int Offset, int Length)[] pieces = [.. ResponseChunks.Of(total)];

        Assert.Equal(lengths, pieces.Select(p => p.Length));
        Assert.Equal(pieces.Select(p => p.Offset), lengths.Select((_, i) => lengths.Take(i).Sum()));
        Assert.True(ResponseChunks.MaxBytes < 4 * 1024 * 1024);
    }
}
