"""SegmentationService from a real gRPC client (Debian's python3-grpcio).

Usage: segmentation_client.py TARGET DESCRIPTOR_SET MODEL IMAGE_PNG SLIDE X Y WIDTH HEIGHT OUT_FOLDER
Calls Segment twice: once with IMAGE_PNG uploaded, once on the level-0 rectangle of SLIDE. Each output's chunks are
joined in order (checking offsets and total sizes) and written to OUT_FOLDER as image-<output>-<class>.bin and
slide-<output>-<class>.bin. Prints one JSON object of what was observed; the C# test compares the files with what
the engine computes directly.
"""
import json
import os
import sys

import grpc
from descriptor_messages import load_pool

METHOD = "/slideplugin.v1.SegmentationService/Segment"


def segment(channel, M, output_names, request, prefix, folder):
    call = channel.unary_stream(METHOD, request_serializer=M("SegmentRequest").SerializeToString,
                                response_deserializer=M("SegmentResponse").FromString)
    seen = {"events": [], "header": None, "summary": None, "outputs": {}}
    parts = {}
    for response in call(request, timeout=120):
        kind = response.WhichOneof("event")
        seen["events"].append(kind)
        if kind == "header":
            h = response.header
            seen["header"] = {"width": h.width, "height": h.height, "map_width": h.map_width, "map_height": h.map_height,
                              "level0_x": h.level0_x, "level0_y": h.level0_y, "downsample_x": h.downsample_x,
                              "classes": [c.name for c in h.classes], "has_mpp": h.HasField("mpp")}
        elif kind == "chunk":
            c = response.chunk
            key = f"{output_names[c.output]}-{c.class_index}"
            data = parts.setdefault(key, bytearray())
            assert c.offset == len(data), f"{key}: chunk at {c.offset}, expected {len(data)}"
            assert len(c.data) < 4 * 1024 * 1024
            data.extend(c.data)
            seen["outputs"][key] = c.total_bytes
        elif kind == "summary":
            s = response.summary
            seen["summary"] = {"detection_count": s.detection_count,
                               "fractions": [c.fraction for c in s.classes], "presence": [c.presence for c in s.classes]}
    for key, data in parts.items():
        assert len(data) == seen["outputs"][key], f"{key}: {len(data)} bytes joined, total_bytes {seen['outputs'][key]}"
        with open(os.path.join(folder, f"{prefix}-{key}.bin"), "wb") as f:
            f.write(data)
    return seen


def main():
    target, descriptors, model, image_path, slide, x, y, width, height, folder = sys.argv[1:11]
    pool, message = load_pool(descriptors)
    M = lambda name: message("slideplugin.v1." + name)  # noqa: E731
    output_names = {v.number: v.name for v in pool.FindEnumTypeByName("slideplugin.v1.SegmentOutput").values}
    with grpc.insecure_channel(target) as channel:
        with open(image_path, "rb") as f:
            image = M("EncodedImage")(format=pool.FindEnumTypeByName("slideplugin.v1.ImageFormat").values_by_name["IMAGE_FORMAT_PNG"].number,
                                      data=f.read())
        uploaded = segment(channel, M, output_names, M("SegmentRequest")(model_path=model, image=image), "image", folder)
        region = M("SlideRegion")(path=slide, region=M("Rect")(x=int(x), y=int(y), width=int(width), height=int(height)))
        on_slide = segment(channel, M, output_names, M("SegmentRequest")(model_path=model, slide_region=region), "slide", folder)
    print(json.dumps({"image": uploaded, "slide": on_slide}))


if __name__ == "__main__":
    main()
