namespace SlidePlugin.Engine.Modules;

/// <summary>Modules held in a list (<c>torch.nn.ModuleList</c>): children named "0", "1", ...; no forward of its own.</summary>
public sealed class ModuleList<T> : Module where T : Module
{
    private readonly T[] _items;

    /// <summary>Holds <paramref name="items"/> in order.</summary>
    public ModuleList(IEnumerable<T> items)
    {
        ArgumentNullException.ThrowIfNull(items);
        _items = [.. items];
        for (int i = 0; i < _items.Length; i++)
        {
            RegisterModule(i.ToString(System.Globalization.CultureInfo.InvariantCulture), _items[i]);
        }
    }

    /// <summary>The i-th module.</summary>
    public T this[int index] => _items[index];

    /// <summary>How many modules.</summary>
    public int Count => _items.Length;
}
