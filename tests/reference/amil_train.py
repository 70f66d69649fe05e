#!/usr/bin/env python3
"""PyTorch side of the A-MIL reproduction: trains Ilse et al.'s model on bags exported by the C# side and scores it.

Usage: amil_train.py BAGS.safetensors SETTINGS.json

BAGS holds one float32 tensor per bag, "bag.<i>" = [N, C, P, P], already normalised exactly as the C# trainer feeds
them, and "labels" = [bags] (0/1). SETTINGS (JSON): spec (as torch_reference.AttentionMil), train and test (bag
indices), epochs, learning_rate, weight_decay, seed, threads.

Training follows the reference code (github.com/AMLab-Amsterdam/AttentionDeepMIL, main.py): one bag per step, the
training bags reshuffled every epoch, Adam (betas 0.9/0.999), the clamped binary cross-entropy; the model after the
last epoch is scored on the test bags. Prints JSON: test_auc, test_accuracy, test_error, test_loss, train_loss
(per epoch), seconds (training and scoring).
"""
import json
import sys
import time

import numpy as np
import torch

from torch_reference import AttentionMil, load_safetensors


def roc_auc(labels, scores):
    """Mann-Whitney U with average ranks for ties (what sklearn's roc_auc_score computes); NaN with one class."""
    labels, scores = np.asarray(labels, dtype=bool), np.asarray(scores, dtype=np.float64)
    positives, negatives = labels.sum(), (~labels).sum()
    if positives == 0 or negatives == 0:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[labels].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def main():
    tensors, _ = load_safetensors(sys.argv[1])
    with open(sys.argv[2]) as f:
        settings = json.load(f)
    torch.set_num_threads(settings["threads"])
    torch.manual_seed(settings["seed"])
    labels = tensors["labels"].long().tolist()
    model = AttentionMil(settings["spec"])
    optimizer = torch.optim.Adam(model.parameters(), lr=settings["learning_rate"], betas=(0.9, 0.999),
                                 weight_decay=settings["weight_decay"])
    start = time.perf_counter()
    train = list(settings["train"])
    train_losses = []
    for _ in range(settings["epochs"]):
        model.train()
        total = 0.0
        for position in torch.randperm(len(train)).tolist():
            index = train[position]
            optimizer.zero_grad()
            loss, _, _ = model.objective(tensors[f"bag.{index}"], labels[index])
            total += float(loss)
            loss.backward()
            optimizer.step()
        train_losses.append(total / len(train))

    model.eval()
    scores, correct, test_loss = [], 0, 0.0
    with torch.no_grad():
        for index in settings["test"]:
            loss, out, _ = model.objective(tensors[f"bag.{index}"], labels[index])
            probability = float(out[0, 0])
            scores.append(probability)
            correct += int((probability >= 0.5) == (labels[index] == 1))
            test_loss += float(loss)
    count = len(settings["test"])
    seconds = time.perf_counter() - start
    print(json.dumps({
        "test_auc": roc_auc([labels[i] == 1 for i in settings["test"]], scores),
        "test_accuracy": correct / count,
        "test_error": 1 - correct / count,
        "test_loss": test_loss / count,
        "train_loss": train_losses,
        "seconds": seconds,
    }))


if __name__ == "__main__":
    main()
