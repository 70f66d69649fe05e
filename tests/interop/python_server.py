"""A real gRPC server (Debian's python3-grpcio) implementing the interop test service, for our client.

Usage: python_server.py DESCRIPTOR_SET
Binds 127.0.0.1 on a free port, prints "PORT <n>" and serves until its standard input closes.
Messages are built at run time from DESCRIPTOR_SET (written by the C# test), so no generated code is needed.
"""
import sys
import threading
from concurrent import futures

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

SERVICE = "slideplugin.testing.v1.InteropTestService"


def main():
    fds = descriptor_pb2.FileDescriptorSet.FromString(open(sys.argv[1], "rb").read())
    pool = descriptor_pool.DescriptorPool()
    for f in fds.file:
        pool.Add(f)
    factory = message_factory.MessageFactory(pool)
    M = lambda name: factory.GetPrototype(pool.FindMessageTypeByName("slideplugin.testing.v1." + name))
    EchoRequest, EchoResponse, Chunk = M("EchoRequest"), M("EchoResponse"), M("Chunk")
    observations = {}
    lock = threading.Lock()

    def echo(request, context):
        echoed = [(k, v) for k, v in context.invocation_metadata() if k.startswith("x-echo-")]
        if echoed:
            context.send_initial_metadata(echoed)
            context.set_trailing_metadata([("x-trailer-" + k[len("x-echo-"):], v) for k, v in echoed])
        if request.status_code:
            context.abort(grpc.StatusCode(next(c for c in grpc.StatusCode if c.value[0] == request.status_code).value), request.status_message)
        return EchoResponse(message=request.message, payload=request.payload)

    def stream_out(request, context):
        payload = bytes(request.size)
        for i in range(request.count):
            yield Chunk(index=i, payload=payload)

    def stream_in(requests, context):
        count = total = 0
        for chunk in requests:
            if chunk.index != count:
                context.abort(grpc.StatusCode.DATA_LOSS, f"chunk {count} arrived as {chunk.index}")
            count += 1
            total += len(chunk.payload)
        return M("StreamInResponse")(count=count, total_bytes=total)

    def duplex(requests, context):
        for chunk in requests:
            yield chunk

    def wait_for_cancel(request, context):
        done = threading.Event()

        def on_done():
            remaining = context.time_remaining()
            with lock:
                observations[request.id] = (True, remaining is not None and remaining <= 0)
            done.set()

        with lock:
            observations[request.id] = (False, False)
        context.add_callback(on_done)
        yield Chunk(index=0)
        done.wait(60)

    def get_cancel_observation(request, context):
        with lock:
            cancelled, deadline = observations.get(request.id, (False, False))
        return M("GetCancelObservationResponse")(started=request.id in observations, cancelled=cancelled, deadline_exceeded=deadline)

    def handler(kind, fn, req, resp):
        return kind(fn, request_deserializer=req.FromString, response_serializer=resp.SerializeToString)

    handlers = {
        "Echo": handler(grpc.unary_unary_rpc_method_handler, echo, EchoRequest, EchoResponse),
        "StreamOut": handler(grpc.unary_stream_rpc_method_handler, stream_out, M("StreamOutRequest"), Chunk),
        "StreamIn": handler(grpc.stream_unary_rpc_method_handler, stream_in, Chunk, M("StreamInResponse")),
        "Duplex": handler(grpc.stream_stream_rpc_method_handler, duplex, Chunk, Chunk),
        "WaitForCancel": handler(grpc.unary_stream_rpc_method_handler, wait_for_cancel, M("WaitForCancelRequest"), Chunk),
        "GetCancelObservation": handler(grpc.unary_unary_rpc_method_handler, get_cancel_observation,
                                        M("GetCancelObservationRequest"), M("GetCancelObservationResponse")),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(SERVICE, handlers),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"PORT {port}", flush=True)
    sys.stdin.read()  # serve until the test closes our stdin
    server.stop(grace=1).wait()


if __name__ == "__main__":
    main()
