"""Python grpcio client of the transport benchmark (Debian's python3-grpcio), against the same server.

Usage: python_transport_client.py HOST:PORT DESCRIPTOR_SET PINGS BLOCKS BLOCK_SIZE
Prints JSON: unary latencies (µs, sorted) and the stream's seconds and bytes. Messages are real protobuf
messages built from the descriptor set, parsed on receipt, as the C# client does.
"""
import json
import sys
import time

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


def main():
    target, descriptor_set = sys.argv[1], sys.argv[2]
    pings, blocks, block_size = (int(a) for a in sys.argv[3:6])
    fds = descriptor_pb2.FileDescriptorSet.FromString(open(descriptor_set, "rb").read())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    factory = message_factory.MessageFactory(pool)
    M = lambda n: factory.GetPrototype(pool.FindMessageTypeByName("slideplugin.benchmark.v1." + n))
    channel = grpc.insecure_channel(target, options=[("grpc.max_receive_message_length", 8 * 1024 * 1024)])
    svc = "/slideplugin.benchmark.v1.TransportBenchmarkService/"
    ping = channel.unary_unary(svc + "Ping", request_serializer=M("PingRequest").SerializeToString,
                               response_deserializer=M("PingResponse").FromString)
    download = channel.unary_stream(svc + "Download", request_serializer=M("DownloadRequest").SerializeToString,
                                    response_deserializer=M("Block").FromString)
    for i in range(200):  # warm-up: connection, code paths
        ping(M("PingRequest")(sequence=i))
    for _ in download(M("DownloadRequest")(count=100, size=block_size)):
        pass

    latencies = []
    for i in range(pings):
        t0 = time.perf_counter()
        ping(M("PingRequest")(sequence=i))
        latencies.append((time.perf_counter() - t0) * 1e6)
    t0 = time.perf_counter()
    received = 0
    for block in download(M("DownloadRequest")(count=blocks, size=block_size)):
        received += len(block.data)
    seconds = time.perf_counter() - t0
    print(json.dumps({"latencies_us": sorted(latencies), "stream_seconds": seconds, "stream_bytes": received}))


if __name__ == "__main__":
    main()
