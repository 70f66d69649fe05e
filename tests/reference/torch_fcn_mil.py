#!/usr/bin/env python3
"""PyTorch reference for the FCN and Pathak et al.'s multi-class MIL loss (Debian python3-torch 1.13).

Usage: torch_fcn_mil.py CASE.safetensors RESULT.safetensors

CASE holds the network's weights under their state-dict names ("body.0.weight", ...), the input "x" [1, C, H, W]
and metadata "spec" (channels, classes, widths) and "present" (tagged foreground classes). RESULT gets "logits",
"loss" and "grad.<name>" for every parameter.
"""
import json
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

from torch_reference import load_safetensors, save_safetensors

torch.set_num_threads(1)


def fcn(spec):
    c, k, (w0, w1, w2) = spec["channels"], spec["classes"], spec["widths"]
    return nn.Sequential(
        nn.Conv2d(c, w0, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(w0, w1, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2, 2),
        nn.Conv2d(w1, w2, 3, padding=1), nn.ReLU(),
        nn.Conv2d(w2, k, 1))


def mil_loss(logits, present):
    """-(1/|L|) sum over tagged classes (background included) of log p at the class's argmax pixel, plus
    mean over absent classes of -log(1 - p) at theirs (p clamped to [1e-5, 1 - 1e-5] as Ilse et al.'s BCE)."""
    k = logits.shape[1]
    log_p = F.log_softmax(logits, dim=1)[0].reshape(k, -1)
    p = F.softmax(logits, dim=1)[0].reshape(k, -1)
    tagged = sorted({0, *present})
    absent = [c for c in range(1, k) if c not in tagged]
    loss = -sum(log_p[c, torch.argmax(log_p[c])] for c in tagged) / len(tagged)
    if absent:
        at_max = torch.stack([p[a, torch.argmax(p[a])] for a in absent]).clamp(1e-5, 1 - 1e-5)
        loss = loss - torch.log(1 - at_max).mean()
    return loss


def main():
    tensors, meta = load_safetensors(sys.argv[1])
    spec, present = json.loads(meta["spec"]), json.loads(meta["present"])
    body = fcn(spec)
    model = nn.Module()
    model.body = body
    model.load_state_dict({n: t for n, t in tensors.items() if n != "x"}, strict=True)
    logits = model.body(tensors["x"])
    loss = mil_loss(logits, present)
    loss.backward()
    result = {"logits": logits.detach(), "loss": loss.detach().reshape(())}
    result.update({f"grad.{n}": q.grad for n, q in model.named_parameters()})
    save_safetensors(sys.argv[2], result)


if __name__ == "__main__":
    main()
