using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace SlidePlugin.Sidecar.Tests.Services;

/// <summary>Descriptor sets for the Python interop clients, which build their messages from them.</summary>
internal static class ProtoDescriptors
{
    /// <summary>The file and its imports, imports first (Python's descriptor pool needs them before their importers).</summary>
    public static byte[] SetOf(FileDescriptor root)
    {
        var set = new FileDescriptorSet();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        void Add(FileDescriptor file)
        {
            if (seen.Add(file.Name))
            {
                foreach (FileDescriptor dependency in file.Dependencies)
                {
                    Add(dependency);
                }

                set.File.Add(FileDescriptorProto.Parser.ParseFrom(file.SerializedData));
            }
        }

        Add(root);
        return set.ToByteArray();
    }
}
