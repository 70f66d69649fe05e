#!/usr/bin/env python3
"""PyTorch reference for the engine's layers and attention-MIL models (Debian python3-torch 1.13).

Usage: torch_reference.py CASES_DIR

For every CASES_DIR/NAME.case.safetensors written by the C# tests, computes what PyTorch computes and writes
CASES_DIR/NAME.torch.safetensors. A case's __metadata__ holds "kind" (op | model | torch_init) and "params" (JSON).

  op         forward of one function on the case's tensors, then backward of sum(out * grad_out);
             writes out, grad.<input> for each input named in params["grad"] (and running stats for batch_norm).
  model      Ilse et al.'s (gated) attention MIL, or a CLAM-SB / CLAM-MB head (spec "variant"), with the weights of the checkpoint params["weights"] (saved by the
             C# ModelCheckpoint, loaded with strict state_dict names), in float32 and again in float64: probabilities, attention,
             loss and every parameter gradient for the bag and label; then parameters after five Adam steps
             (lr 5e-4, betas 0.9/0.999, weight decay 1e-4) and after five SGD steps (lr 1e-2, momentum 0.9, wd 1e-4).
             For Adam in float32 also each step's gradients (adam.stepT.grad.<name>) and adam.spread.<name>: the
             largest distance from float64 of the same five steps on eight reorderings of the bag, and of the float64
             steps with every ReLU and max-pool kink nearer than float32 resolves taken the other way.
  torch_init a model initialised by PyTorch (torch.manual_seed(params["seed"])), its weights written to
             NAME.weights.safetensors, and its probabilities and attention on the case's bag.

safetensors is read and written here by hand (struct + json + numpy): Debian has no python3-safetensors, and
an independent reader is also a check of the C# writer.
"""
import glob
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

torch.set_num_threads(1)

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64, "I32": np.int32, "F16": np.float16, "U8": np.uint8}


def load_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    tensors = {}
    for name, entry in header.items():
        begin, end = entry["data_offsets"]
        array = np.frombuffer(data[base + begin:base + end], dtype=np.dtype(DTYPES[entry["dtype"]]).newbyteorder("<"))
        tensors[name] = torch.from_numpy(array.reshape(entry["shape"]).copy())
    return tensors, meta


def save_safetensors(path, tensors, meta=None):
    header, blobs, offset = {}, [], 0
    if meta:
        header["__metadata__"] = meta
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous()
        dtype = {torch.float32: "F32", torch.int64: "I64"}[t.dtype]
        blob = t.numpy().astype(t.numpy().dtype.newbyteorder("<")).tobytes()
        header[name] = {"dtype": dtype, "shape": list(t.shape), "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for blob in blobs:
            f.write(blob)
    os.replace(tmp, path)


# ---- layers -------------------------------------------------------------------------------------------------------

def run_op(t, p):
    leaves = {}
    for name in p.get("grad", []):
        t[name] = t[name].clone().requires_grad_(True)
        leaves[name] = t[name]
    op = p["op"]
    extra = {}
    if op == "linear":
        out = F.linear(t["x"], t["w"], t.get("b"))
    elif op == "matmul":
        out = t["a"] @ t["b"]
    elif op == "conv2d":
        out = F.conv2d(t["x"], t["w"], t.get("b"), stride=p["stride"], padding=p["padding"])
    elif op == "max_pool2d":
        out = F.max_pool2d(t["x"], p["kernel"], p["stride"], p["padding"])
    elif op == "adaptive_avg_pool2d":
        out = F.adaptive_avg_pool2d(t["x"], (p["oh"], p["ow"]))
    elif op in ("relu", "tanh", "sigmoid"):
        out = getattr(torch, op)(t["x"])
    elif op == "softmax":
        out = F.softmax(t["x"], dim=p["dim"])
    elif op == "log_softmax":
        out = F.log_softmax(t["x"], dim=p["dim"])
    elif op == "add":
        out = t["a"] + t["b"]
    elif op == "sub":
        out = t["a"] - t["b"]
    elif op == "mul":
        out = t["a"] * t["b"]
    elif op == "scale":
        out = t["x"] * p["scale"]
    elif op == "transpose":
        out = torch.transpose(t["x"], p["dim0"], p["dim1"])
    elif op == "cat":
        out = torch.cat([t[f"x{i}"] for i in range(p["count"])], dim=p["dim"])
    elif op == "flatten":
        out = torch.flatten(t["x"], p["start"])
    elif op == "sum":
        out = t["x"].sum()
    elif op == "mean":
        out = t["x"].mean()
    elif op == "sum_dim":
        out = t["x"].sum(dim=p["dim"], keepdim=p["keep"])
    elif op == "mean_dim":
        out = t["x"].mean(dim=p["dim"], keepdim=p["keep"])
    elif op == "batch_norm":
        rm, rv = t["running_mean"].clone(), t["running_var"].clone()
        out = F.batch_norm(t["x"], rm, rv, t["w"], t["b"], training=p["training"], momentum=p["momentum"], eps=p["eps"])
        extra = {"running_mean": rm, "running_var": rv}
    elif op == "bce_clamped":
        prob = torch.clamp(t["p"], min=1e-5, max=1. - 1e-5)
        out = (-1. * (t["y"] * torch.log(prob) + (1. - t["y"]) * torch.log(1. - prob))).mean()
    elif op == "cross_entropy":
        out = F.cross_entropy(t["logits"], t["targets"].long())
    else:
        raise ValueError(f"unknown op {op}")
    (out * t["grad_out"]).sum().backward()
    result = {"out": out.detach()}
    result.update({f"grad.{name}": leaf.grad for name, leaf in leaves.items()})
    result.update(extra)
    return result


# ---- Ilse et al.'s models (github.com/AMLab-Amsterdam/AttentionDeepMIL, model.py), input size configurable ----------

def max_pool2(x):
    return F.max_pool2d(x, 2, stride=2)


# Where the gradient jumps. Kinked.threshold None: plain ReLU and max-pooling, as Ilse et al. A number t: the other side
# of every kink closer than t times the layer's largest value (a ReLU input that near zero passes the other way; a
# pooling window whose two largest values are that close takes the runner-up), which is what float32 rounding may
# decide differently from exact arithmetic.
class Kinked(nn.Module):
    threshold = None

    def __init__(self, plain, flipped):
        super().__init__()
        self.plain, self.flipped = plain, flipped

    def forward(self, x):
        if Kinked.threshold is None:
            return self.plain(x)
        return self.flipped(x, Kinked.threshold * x.detach().abs().max())


def flip_relu(x, near):
    gate = (x > 0) ^ (x.abs() < near)
    return x * gate.to(x.dtype)


def flip_pool(x, near):
    n, c, h, w = x.shape
    windows = x[:, :, :h // 2 * 2, :w // 2 * 2].reshape(n, c, h // 2, 2, w // 2, 2).permute(0, 1, 2, 4, 3, 5).reshape(n, c, h // 2, w // 2, 4)
    top = windows.detach().topk(2, dim=-1)
    tied = (top.values[..., 0] - top.values[..., 1]) < near
    index = torch.where(tied, top.indices[..., 1], top.indices[..., 0])
    return windows.gather(-1, index.unsqueeze(-1)).squeeze(-1)


class AttentionMil(nn.Module):
    def __init__(self, spec):
        super().__init__()
        L, D = spec["embedding_size"], spec["attention_size"]
        self.binary = spec["head"] == "binary"
        self.patches = spec["input"] == "patches"
        if self.patches:
            side = ((spec["patch_size"] - 4) // 2 - 4) // 2
            self.flat = 50 * side * side
            self.feature_extractor_part1 = nn.Sequential(
                nn.Conv2d(spec["channels"], 20, kernel_size=5), Kinked(F.relu, flip_relu), Kinked(max_pool2, flip_pool),
                nn.Conv2d(20, 50, kernel_size=5), Kinked(F.relu, flip_relu), Kinked(max_pool2, flip_pool))
        else:
            self.flat = spec["feature_size"]
        self.feature_extractor_part2 = nn.Sequential(nn.Linear(self.flat, L), Kinked(F.relu, flip_relu))
        self.gated = spec["attention"] == "gated"
        if self.gated:
            self.attention_V = nn.Sequential(nn.Linear(L, D), nn.Tanh())
            self.attention_U = nn.Sequential(nn.Linear(L, D), nn.Sigmoid())
            self.attention_weights = nn.Linear(D, 1)
        else:
            self.attention = nn.Sequential(nn.Linear(L, D), nn.Tanh(), nn.Linear(D, 1))
        outputs = 1 if self.binary else spec["class_count"]
        self.classifier = nn.Sequential(nn.Linear(L, outputs), nn.Sigmoid()) if self.binary else nn.Sequential(nn.Linear(L, outputs))

    def forward(self, x):
        H = self.feature_extractor_part1(x).view(-1, self.flat) if self.patches else x
        H = self.feature_extractor_part2(H)                      # N x L
        A = self.attention_weights(self.attention_V(H) * self.attention_U(H)) if self.gated else self.attention(H)  # N x 1
        A = torch.transpose(A, 1, 0)                             # 1 x N
        A = F.softmax(A, dim=1)
        M = torch.mm(A, H)                                       # 1 x L
        out = self.classifier(M)                                 # 1 x 1 (probability) or 1 x K (logits)
        return out, A

    def objective(self, x, label):
        out, A = self(x)
        if self.binary:
            Y_prob = torch.clamp(out, min=1e-5, max=1. - 1e-5)
            Y = torch.tensor(float(label), dtype=out.dtype)
            return -1. * (Y * torch.log(Y_prob) + (1. - Y) * torch.log(1. - Y_prob)), out, A
        return F.cross_entropy(out, torch.tensor([label])), out, A


# ---- CLAM's heads (Lu et al. 2021, github.com/mahmoodlab/CLAM), with CLAM's state-dict names; no dropout here -------

class GatedBranches(nn.Module):
    """CLAM's gated attention network: B scores per instance from tanh(a h) * sigmoid(b h)."""
    def __init__(self, L, D, B):
        super().__init__()
        self.attention_a = nn.Sequential(nn.Linear(L, D), nn.Tanh())
        self.attention_b = nn.Sequential(nn.Linear(L, D), nn.Sigmoid())
        self.attention_c = nn.Linear(D, B)

    def forward(self, h):
        return self.attention_c(self.attention_a(h) * self.attention_b(h))


class PlainBranches(nn.Module):
    def __init__(self, L, D, B):
        super().__init__()
        self.module = nn.Sequential(nn.Linear(L, D), nn.Tanh(), nn.Linear(D, B))

    def forward(self, h):
        return self.module(h)


class Clam(nn.Module):
    def __init__(self, spec):
        super().__init__()
        L, D, K = spec["embedding_size"], spec["attention_size"], spec["class_count"]
        self.binary = False
        self.mb = spec["variant"] == "clam_mb"
        self.classes, self.k, self.bag_weight, self.subtyping = K, spec["instance_samples"], spec["bag_weight"], spec["subtyping"]
        branches = (GatedBranches if spec["attention"] == "gated" else PlainBranches)(L, D, K if self.mb else 1)
        self.attention_net = nn.Sequential(nn.Linear(spec["feature_size"], L), Kinked(F.relu, flip_relu), nn.Dropout(0.0), branches)
        self.classifiers = nn.ModuleList([nn.Linear(L, 1) for _ in range(K)]) if self.mb else nn.Linear(L, K)
        self.instance_classifiers = nn.ModuleList([nn.Linear(L, 2) for _ in range(K)])

    def embed_and_attend(self, x):
        h = self.attention_net[2](self.attention_net[1](self.attention_net[0](x)))   # N x L
        A = F.softmax(self.attention_net[3](h).t(), dim=1)                           # B x N
        M = A @ h                                                                    # B x L
        if self.mb:
            logits = torch.cat([self.classifiers[c](M[c:c + 1]) for c in range(self.classes)], dim=1)
        else:
            logits = self.classifiers(M)                                             # 1 x K
        return logits, A, h

    def forward(self, x):
        logits, A, _ = self.embed_and_attend(x)
        shown = A[logits.argmax().item()] if self.mb else A[0]                       # the predicted class's branch
        return logits, shown.unsqueeze(0)

    def instance_loss(self, A, h, label):
        k = min(self.k, h.shape[0])
        total = 0.0
        for c in range(self.classes):
            if c != label and not self.subtyping:
                continue
            a = A[c] if self.mb else A[0]
            top = torch.topk(a, k)[1]
            if c == label:
                rows = torch.cat([top, torch.topk(-a, k)[1]])
                targets = torch.cat([torch.ones(k), torch.zeros(k)]).long()
            else:
                rows, targets = top, torch.zeros(k).long()
            total = total + F.cross_entropy(self.instance_classifiers[c](h.index_select(0, rows)), targets)
        return total / self.classes if self.subtyping else total

    def objective(self, x, label):
        logits, A, h = self.embed_and_attend(x)
        bag = F.cross_entropy(logits, torch.tensor([label]))
        loss = self.bag_weight * bag + (1 - self.bag_weight) * self.instance_loss(A, h, label)
        shown = A[logits.argmax().item()] if self.mb else A[0]
        return loss, logits, shown.unsqueeze(0)


def build_model(spec):
    return Clam(spec) if spec.get("variant", "ilse") != "ilse" else AttentionMil(spec)


def probabilities(model, out):
    return torch.cat([1 - out[0], out[0]]) if model.binary else F.softmax(out, dim=1)[0]


def run_model(t, p, folder):
    """Float32, as the engine computes, and float64 (suffix @f64): how far float32 itself is from exact arithmetic
    tells the tests how close two float32 implementations can be expected to agree."""
    weights, _ = load_safetensors(os.path.join(folder, p["weights"]))   # the checkpoint the C# side saved
    result = {}
    for suffix, dtype in (("", torch.float32), ("@f64", torch.float64)):
        for key, value in evaluate_model(p["spec"], weights, t["bag"].to(dtype), p["label"], dtype).items():
            result[key + suffix] = value
    return result


def evaluate_model(spec, weights, bag, label, dtype):
    def build():
        model = build_model(spec)
        model.load_state_dict(weights, strict=True)
        return model.to(dtype)

    model = build()
    loss, out, A = model.objective(bag, label)
    loss.backward()
    result = {"probabilities": probabilities(model, out).detach(), "attention": A.detach()[0], "loss": loss.detach().reshape(())}
    # A CLAM instance classifier of another class gets no gradient (None): zeros, as the engine reports it.
    result.update({f"grad.{n}": zero_if_none(q) for n, q in model.named_parameters()})
    for name, make in OPTIMIZERS:
        trained, gradients = train(build, make, bag, label)
        result.update({f"{name}.{n}": q.detach() for n, q in trained.named_parameters()})
        if name == "adam" and dtype == torch.float32:
            # The gradients of each step, so the engine's Adam can be checked on exactly PyTorch's gradients.
            result.update({f"adam.step{t}.grad.{n}": g for t, step in enumerate(gradients) for n, g in step.items()})
            # MIL is invariant to the order of a bag, but float32 sums are not: the same five steps on reordered bags are
            # equally valid float32 computations. Their distance from float64 is float32's own along this trajectory,
            # including where a max-pool window's two largest values lie within rounding and either may win.
            spread = {n: torch.zeros_like(q) for n, q in trained.named_parameters()}
            generator = torch.Generator().manual_seed(1)
            exact = evaluate_adam_f64(spec, weights, bag, label)
            for _ in range(ORDERINGS):
                order = torch.randperm(bag.shape[0], generator=generator)
                member, _ = train(build, make, bag[order], label)
                for n, q in member.named_parameters():
                    spread[n] = torch.maximum(spread[n], (q.detach().double() - exact[n]).abs().float())
            # And the same five steps in float64 with every kink nearer than float32 can resolve taken the other way.
            Kinked.threshold = KINK_THRESHOLD
            try:
                flipped = evaluate_adam_f64(spec, weights, bag, label)
            finally:
                Kinked.threshold = None
            for n in spread:
                spread[n] = torch.maximum(spread[n], (flipped[n] - exact[n]).abs().float())
            result.update({f"adam.spread.{n}": v for n, v in spread.items()})
    return result


OPTIMIZERS = (("adam", lambda ps: torch.optim.Adam(ps, lr=5e-4, betas=(0.9, 0.999), weight_decay=1e-4)),
              ("sgd", lambda ps: torch.optim.SGD(ps, lr=1e-2, momentum=0.9, weight_decay=1e-4)))

ORDERINGS = 8

# Float32 conv and linear outputs of two implementations (ours, PyTorch's) differ by up to 6.4e-7 of the layer's largest
# value (measured on gated_ucsb_rgb32); kinks nearer than this are ones either may resolve either way.
KINK_THRESHOLD = 1e-6


def train(build, make, bag, label):
    """Five steps of the optimizer from the checkpoint's weights; the model and each step's gradients."""
    trained = build()
    optimizer = make(trained.parameters())
    gradients = []
    for _ in range(5):
        optimizer.zero_grad()
        trained.objective(bag, label)[0].backward()
        # A parameter without a gradient (None) is skipped by the optimizer; it is left out here, and the engine's stays null.
        gradients.append({n: q.grad.detach().clone() for n, q in trained.named_parameters() if q.grad is not None})
        optimizer.step()
    return trained, gradients


def zero_if_none(q):
    return q.grad if q.grad is not None else torch.zeros_like(q)


def evaluate_adam_f64(spec, weights, bag, label):
    def build():
        model = build_model(spec)
        model.load_state_dict(weights, strict=True)
        return model.double()

    trained, _ = train(build, OPTIMIZERS[0][1], bag.double(), label)
    return {n: q.detach() for n, q in trained.named_parameters()}


def run_torch_init(t, p, weights_path):
    torch.manual_seed(p["seed"])
    model = build_model(p["spec"])
    save_safetensors(weights_path, model.state_dict(), {"format": "pt"})
    with torch.no_grad():
        out, A = model(t["bag"])
    return {"probabilities": probabilities(model, out), "attention": A[0]}


def main():
    folder = sys.argv[1]
    cases = sorted(glob.glob(os.path.join(folder, "*.case.safetensors")))
    for path in cases:
        name = os.path.basename(path)[:-len(".case.safetensors")]
        tensors, meta = load_safetensors(path)
        params = json.loads(meta.get("params", "{}"))
        kind = meta["kind"]
        if kind == "op":
            result = run_op(tensors, params)
        elif kind == "model":
            result = run_model(tensors, params, folder)
        elif kind == "torch_init":
            result = run_torch_init(tensors, params, os.path.join(folder, name + ".weights.safetensors"))
        else:
            raise ValueError(f"{name}: unknown kind {kind}")
        save_safetensors(os.path.join(folder, name + ".torch.safetensors"),
                         {k: v.detach().float().contiguous() for k, v in result.items()}, {"torch": torch.__version__})
    print(f"{len(cases)} cases, torch {torch.__version__}")


if __name__ == "__main__":
    main()
