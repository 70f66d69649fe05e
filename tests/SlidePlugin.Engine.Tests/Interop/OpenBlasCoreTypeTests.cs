using SlidePlugin.Engine.Interop;

namespace SlidePlugin.Engine.Tests.Interop;

public sealed class OpenBlasCoreTypeTests
{
    [Theory]
    [InlineData("Haswell", "SkylakeX", true)]
    [InlineData("Zen", "SkylakeX", true)]
    [InlineData("Prescott", "Haswell", true)]
    [InlineData("SkylakeX", "SkylakeX", false)]
    [InlineData("SkylakeX", "Haswell", false)]
    [InlineData("Zen", "Haswell", false)]
    [InlineData("SomethingNew", "SkylakeX", false)]
    [InlineData(null, "SkylakeX", false)]
    public void SlowerInheritedWarning_InheritedOlderKernel_WarnsAndSaysItIsKept(string? inherited, string ours, bool warns)
    {
        string? warning = OpenBlasCoreType.SlowerInheritedWarning(inherited, ours);
        Assert.Equal(warns, warning is not null);
        if (warns)
        {
            Assert.Contains($"OPENBLAS_CORETYPE={inherited}", warning, StringComparison.Ordinal);
            Assert.Contains(ours, warning, StringComparison.Ordinal);
            Assert.Contains("Kept as set", warning, StringComparison.Ordinal);
        }
    }
}
