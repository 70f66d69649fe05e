"""Tile encoders for SlidePlugin, exported to ONNX with their card, with Debian's python3-torch 1.13 (no downloads).

    export_encoder.py export --arch clam-resnet50 --out DIR/NAME [--seed 0]
        DIR/NAME.onnx, DIR/NAME.json (the card) and DIR/NAME.pt (the weights, for the reference below).
        clam-resnet50: CLAM's encoder, ResNet-50 cut after layer3 + global average pooling: 224 px in, 1024 features.
        small:         the same design at a fraction of the width and depth (96 px in, 128 features), for CI.
    export_encoder.py features --weights DIR/NAME.pt --tiles TILES.raw --count N --out FEATURES.f32
        PyTorch's features of N tiles (uint8 RGB, N x S x S x 3, S the card's input size), float32 N x D.

The weights are random (seeded): the design, the export and the preprocessing are what matter here. To bring UNI,
CONCH or your own, build the model, load its weights, and export it the same way: NCHW float32 RGB input in [0, 1]
normalised by the card's mean and std, a dynamic batch dimension, one output of shape [batch, output_dim].
"""
import argparse
import json

import numpy as np
import torch
from torch import nn

IMAGENET_MEAN = [0.485, 0.456, 0.406]
IMAGENET_STD = [0.229, 0.224, 0.225]
ARCHS = {
    # name: (stem width, blocks per stage, planes per stage, input size)
    "clam-resnet50": (64, [3, 4, 6], [64, 128, 256], 224),
    "small": (16, [1, 1, 1], [8, 16, 32], 96),
}


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, stride=1):
        super().__init__()
        self.conv1 = nn.Conv2d(inplanes, planes, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv3 = nn.Conv2d(planes, planes * 4, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or inplanes != planes * 4:
            self.downsample = nn.Sequential(nn.Conv2d(inplanes, planes * 4, 1, stride=stride, bias=False), nn.BatchNorm2d(planes * 4))

    def forward(self, x):
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class TruncatedResNet(nn.Module):
    """ResNet-50's stem and first three stages, then global average pooling: CLAM's resnet50_trunc."""

    def __init__(self, stem, blocks, planes):
        super().__init__()
        self.conv1 = nn.Conv2d(3, stem, 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        layers, inplanes = [], stem
        for i, (count, width) in enumerate(zip(blocks, planes)):
            stage = []
            for b in range(count):
                stage.append(Bottleneck(inplanes, width, stride=2 if (b == 0 and i > 0) else 1))
                inplanes = width * 4
            layers.append(nn.Sequential(*stage))
        self.layer1, self.layer2, self.layer3 = layers
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.output_dim = inplanes

    def forward(self, x):  # x: [N, 3, S, S] normalised RGB
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer3(self.layer2(self.layer1(x)))
        return torch.flatten(self.pool(x), 1)  # [N, output_dim]


def build(arch, seed):
    torch.manual_seed(seed)
    stem, blocks, planes, size = ARCHS[arch]
    model = TruncatedResNet(stem, blocks, planes)
    # Batch-norm statistics away from identity, so that a wrong normalisation shows in the features.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    return model.eval(), size


def export(args):
    model, size = build(args.arch, args.seed)
    torch.save({"arch": args.arch, "seed": args.seed, "state": model.state_dict()}, args.out + ".pt")
    dummy = torch.zeros(2, 3, size, size)
    torch.onnx.export(model, dummy, args.out + ".onnx", input_names=["pixels"], output_names=["features"],
                      dynamic_axes={"pixels": {0: "batch"}, "features": {0: "batch"}}, opset_version=17, do_constant_folding=True)
    card = {
        "name": f"{args.arch}-seed{args.seed}",
        "input_size": size,
        "mpp": 0.5,
        "mean": IMAGENET_MEAN,
        "std": IMAGENET_STD,
        "output_dim": model.output_dim,
        "licence": "Apache-2.0 (random weights, no pretrained data)",
        "source": "tests/reference/export_encoder.py: ResNet-50 cut after layer3 + average pooling, as CLAM's resnet50_trunc",
    }
    with open(args.out + ".json", "w") as f:
        json.dump(card, f, indent=2)
    print(json.dumps(card))


def features(args):
    saved = torch.load(args.weights)
    model, size = build(saved["arch"], saved["seed"])
    model.load_state_dict(saved["state"])
    tiles = np.fromfile(args.tiles, dtype=np.uint8).reshape(args.count, size, size, 3)
    x = torch.from_numpy(tiles).permute(0, 3, 1, 2).float() / 255.0
    x = (x - torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        out = model(x).numpy().astype(np.float32)
    out.tofile(args.out)
    print(json.dumps({"count": int(out.shape[0]), "dim": int(out.shape[1])}))


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export")
    e.add_argument("--arch", choices=sorted(ARCHS), default="clam-resnet50")
    e.add_argument("--out", required=True)
    e.add_argument("--seed", type=int, default=0)
    f = sub.add_parser("features")
    f.add_argument("--weights", required=True)
    f.add_argument("--tiles", required=True)
    f.add_argument("--count", type=int, required=True)
    f.add_argument("--out", required=True)
    args = parser.parse_args()
    export(args) if args.command == "export" else features(args)


if __name__ == "__main__":
    torch.set_num_threads(2)
    main()
