using System.Text;

namespace SlidePlugin.Engine.IO;

/// <summary>
/// One CSV line's fields and one field's text, with RFC 4180 quoting: a field holding a comma, a quote or a line break is
/// quoted, and a quote inside it doubled. Slide lists, cohort manifests and tag lists are read through it, so a slide
/// path with a comma reads the same everywhere.
/// </summary>
public static class CsvFields
{
    /// <summary>The fields of one line; quotes are removed, doubled quotes inside them become one.</summary>
    public static IReadOnlyList<string> Split(string line)
    {
        ArgumentNullException.ThrowIfNull(line);
        var fields = new List<string>();
        var field = new StringBuilder();
        bool quoted = false;
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (quoted)
            {
                if (c == '"' && i + 1 < line.Length && line[i + 1] == '"')
                {
                    field.Append('"');
                    i++;
                }
                else if (c == '"')
                {
                    quoted = false;
                }
                else
                {
                    field.Append(c);
                }
            }
            else if (c == '"')
            {
                quoted = true;
            }
            else if (c == ',')
            {
                fields.Add(field.ToString());
                field.Clear();
            }
            else
            {
                field.Append(c);
            }
        }

        fields.Add(field.ToString());
        return fields;
    }

    /// <summary><paramref name="value"/> as a field: quoted when it holds a comma, quote or line break.</summary>
    public static string Quote(string value)
    {
        ArgumentNullException.ThrowIfNull(value);
        return value.IndexOfAny([',', '"', '\n', '\r']) >= 0 ? "\"" + value.Replace("\"", "\"\"", StringComparison.Ordinal) + "\"" : value;
    }
}
