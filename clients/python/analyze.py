#!/usr/bin/env python3
"""Analyses a slide on a running sidecar and writes its QuPath GeoJSON, with Debian's python3-grpcio.

    clients/python/generate.sh                      # once: the stubs, into clients/python/generated
    /usr/bin/python3 clients/python/analyze.py CMU-1-Small-Region.svs [--address 127.0.0.1:50051] [--token T] [--out .]

The slide path is relative to one of the server's --slide-root folders. Prints a progress line while the tiles are
scored, then the prediction, and writes SLIDE.geojson (tiles with attention and class probabilities, for QuPath).
"""
import argparse
import os
import sys

sys.path.insert(0, os.environ.get("SLIDEPLUGIN_PY_STUBS", os.path.join(os.path.dirname(os.path.abspath(__file__)), "generated")))

import grpc  # noqa: E402
from slideplugin.v1 import analysis_service_pb2 as analysis  # noqa: E402
from slideplugin.v1 import analysis_service_pb2_grpc as analysis_grpc  # noqa: E402


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("slide")
    parser.add_argument("--address", default=os.environ.get("SLIDEPLUGIN_ADDRESS", "127.0.0.1:50051").removeprefix("http://"))
    parser.add_argument("--token", default=os.environ.get("SLIDEPLUGIN_TOKEN"))
    parser.add_argument("--out", default=".")
    args = parser.parse_args()

    metadata = [("authorization", f"Bearer {args.token}")] if args.token else []
    with grpc.insecure_channel(args.address, options=[("grpc.max_receive_message_length", 8 * 1024 * 1024)]) as channel:
        stub = analysis_grpc.AnalysisServiceStub(channel)
        result = None
        try:
            for message in stub.AnalyzeSlide(analysis.AnalyzeSlideRequest(path=args.slide), metadata=metadata):
                kind = message.WhichOneof("event")
                if kind == "progress":
                    p = message.progress
                    print(f"\r{p.tiles_done}/{p.tile_count} tiles", end="", file=sys.stderr, flush=True)
                elif kind == "result":
                    result = message.result
            print(file=sys.stderr)
            geojson = b"".join(chunk.data for chunk in stub.ExportAnalysis(
                analysis.ExportAnalysisRequest(key=result.header.key, format=analysis.EXPORT_FORMAT_GEOJSON), metadata=metadata))
        except grpc.RpcError as e:
            print(f"analyze: {e.code().name}: {e.details()}", file=sys.stderr)
            return 1

    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, os.path.splitext(os.path.basename(args.slide))[0] + ".geojson")
    with open(path + ".tmp", "wb") as f:
        f.write(geojson)
    os.replace(path + ".tmp", path)
    probabilities = ", ".join(f"{c} {p:.3f}" for c, p in zip(result.header.classes, result.probabilities))
    print(f"{args.slide}: {result.predicted_class_name} ({probabilities}); {result.header.tile_count} tiles")
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
