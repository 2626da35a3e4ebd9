"""Time to accuracy, ConvNet against PyTorch, with the same recipe (not part of the build or the tests).

For each recipe given, trains the recipe's network with its settings twice in this run: once with
`convnet train --recipe NAME` and once in PyTorch (CPU, the same thread count), and reports for both the
minutes of training (the sum of the epochs' training time, evaluations left out) until the first epoch
whose test accuracy reaches the target: the recipe's goal (`goal >= X%` in `convnet recipes`) unless
--target says otherwise. The PyTorch side is built from what `convnet recipes --json` and
`convnet models --json` print (the network's spec and the recipe's arguments), so the two cannot drift:

- the network from its spec (conv, relu, maxpool, batchnorm, flatten, dense, dropout, gap), PyTorch's
  default initialisation (ConvNet's `--init pytorch`, the recipes' initialiser);
- pixels / 255, normalised by the training set's mean and standard deviation;
- SGD (momentum, Nesterov), or Adam/AdamW, the learning rate of every iteration from the same formula
  (linear warm-up, then cosine to 0, or the step decay), L2 weight decay on every parameter or on the
  weights only (`--decay-scope weights`: not the biases and batch norm's parameters), label smoothing;
- `--augment shift=N` (each image moved by up to N pixels, filled with the background), `flip` and
  `flip=alternate` (each image mirrored every other epoch, from a coin of its own in the first);
- `--ema D` (an average of the weights and batch norm's running statistics, decay min(D, (1+n)/(10+n)) at
  step n), which the evaluations score; `--tta flip` (the mean of the probabilities of the image and its
  mirror).

Fashion-MNIST only (the IDX files of Debian's dataset-fashion-mnist). Usage, from the repository root,
in the benchmark venv (see requirements-bench.txt) after `swift build -c release`:

    .venv-bench/bin/python Benchmarks/time_to_accuracy.py --recipes fashion-fast [--threads 2] [--seed 1]
"""
import argparse
import gzip
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def convnet_json(convnet, *args):
    out = subprocess.run([convnet, *args, "--json"], check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def fashion(data_dir):
    def part(kind):
        x = read_idx(os.path.join(data_dir, f"{kind}-images-idx3-ubyte.gz")).astype(np.float32) / 255
        y = read_idx(os.path.join(data_dir, f"{kind}-labels-idx1-ubyte.gz")).astype(np.int64)
        return x[:, None], y
    (xt, yt), (xs, ys) = part("train"), part("t10k")
    return xt, yt, xs, ys


def parse_arguments(arguments):
    """`convnet train` arguments as a dict: `--flag value` or `--flag` alone (True)."""
    options, i = {}, 0
    while i < len(arguments):
        flag = arguments[i]
        if i + 1 < len(arguments) and not arguments[i + 1].startswith("--"):
            options[flag] = arguments[i + 1]
            i += 2
        else:
            options[flag] = True
            i += 1
    return options


def build(spec, input_shape):
    """A PyTorch network from a ConvNet spec (the statements the zoo's recipes use)."""
    layers, (c, h, w) = [], input_shape
    for statement in [s.strip() for s in spec.split(";") if s.strip()]:
        words = statement.split()
        kind = words[0].lower()
        if kind in ("conv", "conv2d"):
            filters = int(words[1])
            kh, kw = (int(v) for v in words[2].lower().split("x"))
            rest = dict(zip(words[3::2], words[4::2]))
            stride = int(rest.get("stride", 1))
            pad = rest.get("pad", rest.get("padding", "0"))
            if pad == "same":
                layer = nn.Conv2d(c, filters, (kh, kw), stride=stride, padding="same")
                oh, ow = h, w
            else:
                p = int(pad)
                layer = nn.Conv2d(c, filters, (kh, kw), stride=stride, padding=p)
                oh, ow = (h + 2 * p - kh) // stride + 1, (w + 2 * p - kw) // stride + 1
            layers.append(layer)
            c, h, w = filters, oh, ow
        elif kind == "relu":
            layers.append(nn.ReLU())
        elif kind == "maxpool":
            k = int(words[1])
            s = int(words[3]) if len(words) > 3 and words[2] == "stride" else k
            layers.append(nn.MaxPool2d(k, s))
            h, w = (h - k) // s + 1, (w - k) // s + 1
        elif kind in ("batchnorm", "bn"):
            layers.append(nn.BatchNorm2d(c) if h > 0 else nn.BatchNorm1d(c))
        elif kind == "flatten":
            layers.append(nn.Flatten())
            c, h, w = c * h * w, 0, 0
        elif kind in ("dense", "fc", "linear"):
            layers.append(nn.Linear(c, int(words[1])))
            c = int(words[1])
        elif kind == "dropout":
            layers.append(nn.Dropout(float(words[1])))
        elif kind in ("gap", "globalavgpool"):
            layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
            h, w = 0, 0
        else:
            raise SystemExit(f"time_to_accuracy.py: the spec statement '{statement}' is not supported here")
    return nn.Sequential(*layers)


def rate(kind, base, t, total, warmup, decay, every):
    """The learning rate of 0-based iteration t (Sources/ConvNet/Optimizers/LearningRateSchedule.swift)."""
    if kind == "cosine":
        if t < warmup:
            return base * (t + 1) / warmup
        span = total - warmup
        if span <= 0:
            return base
        return base * (1 + math.cos(math.pi * min(t - warmup, span) / span)) / 2
    if kind == "step":
        r = base * decay ** (t // every)
        return r * (t + 1) / warmup if t < warmup else r
    raise SystemExit(f"time_to_accuracy.py: schedule '{kind}' is not supported here")


def shift_batch(x, n, generator):
    """Each image moved by up to n pixels each way, the vacated pixels filled with the background (0)."""
    if n == 0:
        return x
    b, _, h, w = x.shape
    padded = F.pad(x, (n, n, n, n))
    dy = torch.randint(0, 2 * n + 1, (b,), generator=generator)
    dx = torch.randint(0, 2 * n + 1, (b,), generator=generator)
    rows = (dy[:, None] + torch.arange(h)[None, :])[:, None, :, None].expand(b, 1, h, w + 2 * n)
    shifted = torch.gather(padded, 2, rows)
    cols = (dx[:, None] + torch.arange(w)[None, :])[:, None, None, :].expand(b, 1, h, w)
    return torch.gather(shifted, 3, cols)


def train_pytorch(network, recipe, data, threads, seed, target, log):
    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    o = parse_arguments(recipe["arguments"])
    xt, yt, xs, ys = data
    mean, std = float(xt.mean()), float(xt.std())
    xt, xs = torch.from_numpy(xt), torch.from_numpy(xs)
    yt, ys = torch.from_numpy(yt), torch.from_numpy(ys)
    model = build(network["spec"], tuple(int(v) for v in network["input"].split("x")))
    epochs, batch = int(o.get("--epochs", 10)), int(o.get("--batch-size", 64))
    optimizer_name = o.get("--optimizer", "sgd")
    base = float(o.get("--lr", 0.001 if optimizer_name in ("adam", "adamw") else 0.01))
    decay = float(o.get("--weight-decay", 0.01 if optimizer_name == "adamw" else 0))
    weights_only = o.get("--decay-scope", "all") == "weights"
    decayed = [p for p in model.parameters() if p.dim() > 1 or not weights_only]
    kept = [p for p in model.parameters() if not (p.dim() > 1 or not weights_only)]
    groups = [{"params": decayed, "weight_decay": decay}, {"params": kept, "weight_decay": 0}]
    if optimizer_name == "sgd":
        optimizer = torch.optim.SGD(groups, lr=base, momentum=float(o.get("--momentum", 0.9)), nesterov="--nesterov" in o)
    elif optimizer_name == "adam":
        optimizer = torch.optim.Adam(groups, lr=base)
    elif optimizer_name == "adamw":
        optimizer = torch.optim.AdamW(groups, lr=base)
    else:
        raise SystemExit(f"time_to_accuracy.py: optimizer '{optimizer_name}' is not supported here")
    batches = (len(xt) + batch - 1) // batch
    total = epochs * batches
    warm = o.get("--warmup", "0")
    warmup = int(warm[:-2]) if warm.endswith("it") else round(float(warm) * batches)
    schedule = o.get("--schedule", "step")
    lr_decay, every = float(o.get("--lr-decay", 1)), int(o.get("--decay-every", 1000))
    criterion = nn.CrossEntropyLoss(label_smoothing=float(o.get("--label-smoothing", 0)))
    augment = o.get("--augment", "none")
    shift = int(re.search(r"shift=(\d+)", augment).group(1)) if "shift=" in augment else 0
    flip = "alternate" if "flip=alternate" in augment else ("random" if re.search(r"flip(?!=)", augment) else None)
    ema_decay = float(o["--ema"]) if "--ema" in o else None
    tta = o.get("--tta", "none")
    if "shift" in tta:
        raise SystemExit("time_to_accuracy.py: --tta shift is not supported here")
    tta_flip = "flip" in tta
    averaged = None
    if ema_decay is not None:
        averaged = build(network["spec"], tuple(int(v) for v in network["input"].split("x")))
        averaged.load_state_dict(model.state_dict())
    generator = torch.Generator().manual_seed(seed)
    coins = torch.randint(0, 2, (len(xt),), generator=generator).bool()

    def evaluate(net):
        net.eval()
        correct = 0
        with torch.no_grad():
            for i in range(0, len(xs), 1000):
                x = (xs[i:i + 1000] - mean) / std
                p = F.softmax(net(x), dim=1)
                if tta_flip:
                    p = (p + F.softmax(net(torch.flip(x, dims=[3])), dim=1)) / 2
                correct += (p.argmax(1) == ys[i:i + 1000]).sum().item()
        return correct / len(xs)

    trained, reached, step, rows = 0.0, None, 0, []
    for epoch in range(1, epochs + 1):
        model.train()
        order = torch.randperm(len(xt), generator=generator)
        start = time.perf_counter()
        for b in range(batches):
            index = order[b * batch:(b + 1) * batch]
            x = xt[index]
            x = shift_batch(x, shift, generator)
            if flip == "random":
                mirror = torch.rand(len(index), generator=generator) < 0.5
            elif flip == "alternate":
                mirror = coins[index] ^ (epoch % 2 == 0)
            else:
                mirror = None
            if mirror is not None:
                x = torch.where(mirror[:, None, None, None], torch.flip(x, dims=[3]), x)
            x = (x - mean) / std
            for group in optimizer.param_groups:
                group["lr"] = rate(schedule, base, step, total, warmup, lr_decay, every)
            optimizer.zero_grad(set_to_none=True)
            loss = criterion(model(x), yt[index])
            loss.backward()
            optimizer.step()
            if averaged is not None:
                d = min(ema_decay, (1 + step) / (10 + step))
                with torch.no_grad():
                    for a, p in zip(averaged.state_dict().values(), model.state_dict().values()):
                        if a.dtype.is_floating_point:
                            a.mul_(d).add_(p, alpha=1 - d)
                        else:
                            a.copy_(p)
            step += 1
        trained += time.perf_counter() - start
        accuracy = evaluate(averaged if averaged is not None else model)
        rows.append({"epoch": epoch, "minutes": trained / 60, "test_accuracy": accuracy})
        log(f"  pytorch epoch {epoch}/{epochs}: test accuracy {100 * accuracy:.2f}%, {trained / 60:.2f} min of training")
        if reached is None and accuracy >= target:
            reached = trained / 60
    return reached, rows


def train_convnet(convnet, recipe, data_dir, threads, seed, target, log):
    with tempfile.TemporaryDirectory() as folder:
        out = os.path.join(folder, "run")
        subprocess.run(
            [convnet, "train", "--recipe", recipe["name"], "--data-dir", data_dir, "--threads", str(threads),
             "--seed", str(seed), "--out", out, "--no-report", "--json"], check=True, capture_output=True, text=True)
        rows, trained, reached = [], 0.0, None
        with open(os.path.join(out, "metrics.jsonl")) as f:
            for line in f:
                record = json.loads(line)
                if record.get("type") != "epoch":
                    continue
                trained += record["seconds"]
                rows.append({"epoch": record["epoch"], "minutes": trained / 60, "test_accuracy": record["test_accuracy"]})
                log(f"  convnet epoch {record['epoch']}: test accuracy {100 * record['test_accuracy']:.2f}%, {trained / 60:.2f} min of training")
                if reached is None and record["test_accuracy"] >= target:
                    reached = trained / 60
    return reached, rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recipes", default="fashion-fast", help="comma-separated recipe names (convnet recipes)")
    parser.add_argument("--convnet", default=".build/release/convnet")
    parser.add_argument("--data-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--target", type=float, help="test accuracy to reach, a fraction (default: the recipe's goal)")
    parser.add_argument("--json", action="store_true", help="one JSON object per recipe on stdout")
    args = parser.parse_args()

    def log(text):
        print(text, file=sys.stderr if args.json else sys.stdout, flush=True)

    recipes = {r["name"]: r for r in convnet_json(args.convnet, "recipes")}
    networks = {m["name"]: m for m in convnet_json(args.convnet, "models")}
    data = fashion(args.data_dir)
    lscpu = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
    cpu = ", ".join(line.split(":", 1)[1].strip() for line in lscpu.splitlines()
                    if line.split(":")[0].strip() in ("Model name", "CPU family", "Model"))
    log(f"time to accuracy on {cpu}, {args.threads} threads, seed {args.seed}, torch {torch.__version__}")
    for name in args.recipes.split(","):
        if name not in recipes:
            raise SystemExit(f"time_to_accuracy.py: unknown recipe '{name}'; the recipes are {', '.join(recipes)}")
        recipe = recipes[name]
        if recipe["dataset"] != "fashion-mnist":
            raise SystemExit(f"time_to_accuracy.py: {name} trains on {recipe['dataset']}; this script reads Fashion-MNIST only")
        goal = re.search(r"goal >= ([0-9.]+)%", recipe["summary"])
        target = args.target if args.target is not None else (float(goal.group(1)) / 100 if goal else None)
        if target is None:
            raise SystemExit(f"time_to_accuracy.py: {name} names no goal; give --target")
        log(f"{name} ({recipe['model']}), target {100 * target:.2f}%: convnet train {' '.join(recipe['arguments'])}")
        ours, our_rows = train_convnet(args.convnet, recipe, args.data_dir, args.threads, args.seed, target, log)
        theirs, their_rows = train_pytorch(networks[recipe["model"]], recipe, data, args.threads, args.seed, target, log)

        def text(minutes, rows):
            return f"{minutes:.2f} min" if minutes is not None else f"not reached in {len(rows)} epochs ({rows[-1]['minutes']:.2f} min)"

        ratio = theirs / ours if ours and theirs else None
        log(f"{name}: ConvNet {text(ours, our_rows)}, PyTorch {text(theirs, their_rows)}"
            + (f": PyTorch needs {ratio:.2f}x ConvNet's time" if ratio else ""))
        if args.json:
            print(json.dumps({"recipe": name, "target": target, "threads": args.threads, "seed": args.seed, "cpu": cpu,
                              "torch": torch.__version__, "convnet_minutes": ours, "pytorch_minutes": theirs,
                              "ratio": ratio, "convnet_epochs": our_rows, "pytorch_epochs": their_rows}), flush=True)


if __name__ == "__main__":
    main()
