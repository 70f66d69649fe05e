"""A real gRPC client (Debian's python3-grpcio) for the sidecar's interop tests.

Usage: python_client.py HOST:PORT DESCRIPTOR_SET CASE
Messages are built at run time from DESCRIPTOR_SET (a serialized FileDescriptorSet written by the C#
test), so no generated code is needed. Prints one JSON object with what the case observed; the C# test
asserts on it. Exits non-zero only when the script itself breaks.
"""
import json
import sys
import threading
import time

import grpc
from descriptor_messages import load_pool
from google.protobuf import descriptor_pb2, descriptor_pool

SERVICE = "slideplugin.testing.v1.InteropTestService"
STREAM_COUNT = 10_000
MAX_MESSAGE = 4 * 1024 * 1024


def main():
    target, descriptor_set, case = sys.argv[1], sys.argv[2], sys.argv[3]
    _, M = load_pool(descriptor_set)
    channel = grpc.insecure_channel(target)

    def method(kind, name, req, resp, service=SERVICE):
        factory = getattr(channel, kind)
        return factory(f"/{service}/{name}", request_serializer=req.SerializeToString, response_deserializer=resp.FromString)

    Echo = method("unary_unary", "Echo", M(f"slideplugin.testing.v1.EchoRequest"), M("slideplugin.testing.v1.EchoResponse"))
    Chunk = M("slideplugin.testing.v1.Chunk")
    result = {}

    def error(e):
        return {"code": e.code().name, "details": e.details()}

    if case == "unary":
        r = Echo(M("slideplugin.testing.v1.EchoRequest")(message="héllo", payload=b"\x00\x01\xfe\xff"), timeout=10)
        result = {"message": r.message, "payload": list(r.payload)}
    elif case == "unary_error":
        try:
            Echo(M("slideplugin.testing.v1.EchoRequest")(status_code=5, status_message="slide 'ü' not found: 100% gone\n"), timeout=10)
        except grpc.RpcError as e:
            result = error(e)
    elif case == "server_stream":
        StreamOut = method("unary_stream", "StreamOut", M("slideplugin.testing.v1.StreamOutRequest"), Chunk)
        indices = [c.index for c in StreamOut(M("slideplugin.testing.v1.StreamOutRequest")(count=STREAM_COUNT, size=32), timeout=60)]
        result = {"count": len(indices), "ordered": indices == list(range(STREAM_COUNT))}
    elif case == "client_stream":
        StreamIn = method("stream_unary", "StreamIn", Chunk, M("slideplugin.testing.v1.StreamInResponse"))
        r = StreamIn((Chunk(index=i, payload=b"x" * 32) for i in range(STREAM_COUNT)), timeout=60)
        result = {"count": r.count, "total_bytes": r.total_bytes}
    elif case == "duplex":
        Duplex = method("stream_stream", "Duplex", Chunk, Chunk)
        indices = [c.index for c in Duplex((Chunk(index=i, payload=b"y" * 32) for i in range(STREAM_COUNT)), timeout=60)]
        result = {"count": len(indices), "ordered": indices == list(range(STREAM_COUNT))}
    elif case in ("deadline", "cancel"):
        Wait = method("unary_stream", "WaitForCancel", M("slideplugin.testing.v1.WaitForCancelRequest"), Chunk)
        Observe = method("unary_unary", "GetCancelObservation", M("slideplugin.testing.v1.GetCancelObservationRequest"),
                         M("slideplugin.testing.v1.GetCancelObservationResponse"))
        call_id = f"python-{case}-{time.time_ns()}"
        call = Wait(M("slideplugin.testing.v1.WaitForCancelRequest")(id=call_id), timeout=(2.0 if case == "deadline" else 30))
        next(call)  # the server has started waiting
        if case == "cancel":
            call.cancel()
        try:
            for _ in call:
                pass
        except grpc.RpcError as e:
            result = error(e)
        observed = None
        for _ in range(100):  # the server records the cancellation asynchronously
            observed = Observe(M("slideplugin.testing.v1.GetCancelObservationRequest")(id=call_id), timeout=10)
            if observed.cancelled:
                break
            time.sleep(0.05)
        result["server_cancelled"] = observed.cancelled
        result["server_deadline_exceeded"] = observed.deadline_exceeded
    elif case == "oversize":
        payload = b"z" * (MAX_MESSAGE + 1 - 1 - 4)  # tag + 4-byte length + payload = 4 MiB + 1
        request = M("slideplugin.testing.v1.EchoRequest")(payload=payload)
        assert request.ByteSize() == MAX_MESSAGE + 1, request.ByteSize()
        try:
            Echo(request, timeout=30)
        except grpc.RpcError as e:
            result = error(e)
        result["then_unary_ok"] = Echo(M("slideplugin.testing.v1.EchoRequest")(message="still here"), timeout=10).message == "still here"
    elif case == "unknown_method":
        raw = channel.unary_unary(f"/{SERVICE}/NoSuchMethod")
        raw_service = channel.unary_unary("/slideplugin.testing.v1.NoSuchService/Echo")
        for name, call in (("method", raw), ("service", raw_service)):
            try:
                call(b"", timeout=10)
            except grpc.RpcError as e:
                result[name] = error(e)
    elif case == "metadata":
        response, call = Echo.with_call(
            M("slideplugin.testing.v1.EchoRequest")(message="md"),
            metadata=(("x-echo-text", "plain value"), ("x-echo-bin", b"\x00\x01\xff")), timeout=10)
        initial = dict(call.initial_metadata())
        trailing = dict(call.trailing_metadata())
        result = {
            "header_text": initial.get("x-echo-text"),
            "header_bin": list(initial.get("x-echo-bin", b"")),
            "trailer_text": trailing.get("x-trailer-text"),
            "trailer_bin": list(trailing.get("x-trailer-bin", b"")),
        }
    elif case == "health":
        Req = M("grpc.health.v1.HealthCheckRequest")
        Resp = M("grpc.health.v1.HealthCheckResponse")
        Check = method("unary_unary", "Check", Req, Resp, service="grpc.health.v1.Health")
        Watch = method("unary_stream", "Watch", Req, Resp, service="grpc.health.v1.Health")
        status_name = Resp.DESCRIPTOR.enum_types_by_name["ServingStatus"].values_by_number
        result["overall"] = status_name[Check(Req(service=""), timeout=10).status].name
        result["service"] = status_name[Check(Req(service=SERVICE), timeout=10).status].name
        try:
            Check(Req(service="no.such.Service"), timeout=10)
        except grpc.RpcError as e:
            result["unknown"] = error(e)
        watch = Watch(Req(service=""), timeout=30)
        result["watch_first"] = status_name[next(watch).status].name
        watch.cancel()
        unknown_watch = Watch(Req(service="no.such.Service"), timeout=30)
        result["watch_unknown_first"] = status_name[next(unknown_watch).status].name
        unknown_watch.cancel()
    elif case == "reflection":
        result = reflection(channel, M)
    else:
        raise SystemExit(f"unknown case {case}")
    print(json.dumps(result))


def reflection(channel, M):
    """Does what grpcurl does: list services, fetch each one's file, resolve every method's types."""
    out = {}
    for version in ("v1", "v1alpha"):
        Req = M("grpc.reflection.v1.ServerReflectionRequest")
        Resp = M("grpc.reflection.v1.ServerReflectionResponse")
        info = channel.stream_stream(f"/grpc.reflection.{version}.ServerReflection/ServerReflectionInfo",
                                     request_serializer=Req.SerializeToString, response_deserializer=Resp.FromString)
        requests = [Req(host="localhost", list_services="")]
        responses = list(info(iter(requests), timeout=10))
        services = [s.name for s in responses[0].list_services_response.service]
        requests = [Req(file_containing_symbol=name) for name in services]
        requests.append(Req(file_containing_symbol="no.such.Symbol"))
        requests.append(Req(file_by_filename="health/v1/health.proto"))
        responses = list(info(iter(requests), timeout=10))
        resolved = {}
        for name, resp in zip(services, responses):
            pool = descriptor_pool.DescriptorPool()
            files = [descriptor_pb2.FileDescriptorProto.FromString(b) for b in resp.file_descriptor_response.file_descriptor_proto]
            added = set()
            while len(added) < len(files):  # add each file after its imports
                progress = False
                for f in files:
                    if f.name not in added and all(d in added for d in f.dependency):
                        pool.Add(f)
                        added.add(f.name)
                        progress = True
                if not progress:
                    raise RuntimeError(f"{name}: imports missing from the response: {[f.name for f in files if f.name not in added]}")
            service = pool.FindServiceByName(name)
            methods = {}
            for m in service.methods:
                methods[m.name] = [m.input_type.full_name, m.output_type.full_name]
            resolved[name] = methods
        error = responses[len(services)].error_response
        by_name = responses[len(services) + 1].file_descriptor_response.file_descriptor_proto
        out[version] = {
            "services": services,
            "resolved": resolved,
            "unknown_symbol_code": error.error_code,
            "file_by_name_count": len(by_name),
            "interop_files": sorted(descriptor_pb2.FileDescriptorProto.FromString(b).name for b in
                                    responses[services.index(SERVICE)].file_descriptor_response.file_descriptor_proto),
        }
    return out


if __name__ == "__main__":
    main()
