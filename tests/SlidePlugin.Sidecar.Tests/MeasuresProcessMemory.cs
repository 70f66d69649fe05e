namespace SlidePlugin.Sidecar.Tests;

/// <summary>
/// Test classes that measure the process's managed heap (GC.GetTotalMemory) run alone, after the parallel ones:
/// other tests allocating at the same time would be counted as theirs.
/// </summary>
[CollectionDefinition(nameof(MeasuresProcessMemory), DisableParallelization = true)]
public sealed class MeasuresProcessMemory;
