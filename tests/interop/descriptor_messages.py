"""Message classes from a FileDescriptorSet written by the C# tests (imports first), for the interop clients."""
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


def load_pool(path):
    """The descriptor pool of the set at PATH and a function from a full message name to its class."""
    fds = descriptor_pb2.FileDescriptorSet.FromString(open(path, "rb").read())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    factory = message_factory.MessageFactory(pool)
    return pool, lambda name: factory.GetPrototype(pool.FindMessageTypeByName(name))
