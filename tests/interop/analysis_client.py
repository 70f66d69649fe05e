"""AnalysisService end to end from a real gRPC client (Debian's python3-grpcio).

Usage: analysis_client.py TARGET_A TARGET_B DESCRIPTOR_SET SLIDE
TARGET_A and TARGET_B are two sidecars with empty stores. Messages are built from DESCRIPTOR_SET (written by the C#
test). On A: one uninterrupted AnalyzeSlide, then the same call again (answered from the store). On B: the call is
cancelled after its first progress message, then made again (it resumes). Prints one JSON object of what was observed;
the C# test asserts on it.
"""
import json
import sys
import time

import grpc
from descriptor_messages import load_pool

SERVICE = "/slideplugin.v1.AnalysisService/"


def analyze(channel, M, slide, cancel_after_first_progress=False):
    call = channel.unary_stream(SERVICE + "AnalyzeSlide", request_serializer=M("AnalyzeSlideRequest").SerializeToString,
                                response_deserializer=M("AnalyzeSlideResponse").FromString)
    stream = call(M("AnalyzeSlideRequest")(path=slide), timeout=300)
    seen = {"header": None, "progress_tiles": 0, "progress_messages": 0, "final_tiles": [], "result": None}
    try:
        for response in stream:
            kind = response.WhichOneof("event")
            if kind == "header":
                seen["header"] = response.header
            elif kind == "progress":
                seen["progress_tiles"] += len(response.progress.tiles)
                seen["progress_messages"] += 1
                if cancel_after_first_progress:
                    stream.cancel()
            elif kind == "final_tiles":
                seen["final_tiles"].extend(response.final_tiles.tiles)
            elif kind == "result":
                seen["result"] = response.result
    except grpc.RpcError as e:
        if e.code() != grpc.StatusCode.CANCELLED:
            raise
        seen["cancelled"] = True
    return seen


def summary(seen):
    result = seen["result"]
    return {
        "tile_count": seen["header"].tile_count,
        "tiles_already_scored": seen["header"].tiles_already_scored,
        "progress_tiles": seen["progress_tiles"],
        "final_tile_count": len(seen["final_tiles"]),
        "indices_in_order": [t.index for t in seen["final_tiles"]] == list(range(len(seen["final_tiles"]))),
        "attention_sum": sum(t.attention for t in seen["final_tiles"]),
        "attention": [t.attention for t in seen["final_tiles"]],
        "probabilities": list(result.probabilities) if result else None,
        "from_store": result.from_store if result else None,
        "key": seen["header"].key,
    }


def main():
    target_a, target_b, descriptor_set, slide = sys.argv[1:5]
    _, message = load_pool(descriptor_set)
    M = lambda name: message("slideplugin.v1." + name)  # noqa: E731
    a, b = grpc.insecure_channel(target_a), grpc.insecure_channel(target_b)
    first = summary(analyze(a, M, slide))
    second = summary(analyze(a, M, slide))
    cancelled = analyze(b, M, slide, cancel_after_first_progress=True)
    # The server stops at its next batch and frees the analysis; a new call resumes from the store.
    resumed = None
    for _ in range(100):
        try:
            resumed = summary(analyze(b, M, slide))
            break
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.RESOURCE_EXHAUSTED:
                raise
            time.sleep(0.1)
    print(json.dumps({
        "first": first,
        "second": second,
        "cancelled": {"cancelled": cancelled.get("cancelled", False), "progress_messages": cancelled["progress_messages"],
                      "result": cancelled["result"] is not None},
        "resumed": resumed,
    }))


if __name__ == "__main__":
    main()
