"""PyTorch reference figures for `convnet bench` (not part of the build or the tests).

The zoo's networks in PyTorch, trained as `convnet bench` trains them: float32, SGD with momentum
0.9, softmax cross-entropy, one random batch already in memory, 3 warm-up steps, then 5 timed runs.
Prints training and inference images per second per network and batch size (median and best).

    pip install torch numpy
    python3 Benchmarks/pytorch_reference.py [--threads 2] [--models mlp,lenet5]
"""
import argparse
import time

import torch
import torch.nn as nn


def zoo():
    """Input shape and constructor of each network, as in Sources/ConvNet/Zoo/ModelZoo.swift."""
    return {
        "mlp": ((1, 14, 14), lambda: nn.Sequential(
            nn.Flatten(), nn.Linear(196, 30), nn.ReLU(), nn.Linear(30, 10))),
        "tiny-cnn": ((1, 14, 14), lambda: nn.Sequential(
            nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(147, 10))),
        "lenet5": ((1, 32, 32), lambda: nn.Sequential(
            nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))),
        "tf-cnn": ((1, 28, 28), lambda: nn.Sequential(
            nn.Conv2d(1, 32, 10, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 16, 5, padding="same"), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(), nn.Linear(784, 1024), nn.ReLU(), nn.Linear(1024, 10))),
        "two-conv": ((1, 28, 28), lambda: nn.Sequential(
            nn.Conv2d(1, 50, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(50, 100, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(4900, 10))),
    }


def rates(step, images, steps, runs=5):
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(steps):
            step()
        out.append(images * steps / (time.perf_counter() - start))
    out.sort()
    return out[len(out) // 2], out[-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--models", default=",".join(zoo()))
    parser.add_argument("--batch-sizes", default="64,128")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"CPU capability {torch.backends.cpu.get_cpu_capability()}")
    print(f"{'model':10s} {'batch':>5s} {'train median':>13s} {'best':>10s} {'infer median':>13s} {'best':>10s}")
    for name in args.models.split(","):
        shape, make = zoo()[name]
        for batch in (int(b) for b in args.batch_sizes.split(",")):
            torch.manual_seed(1)
            net = make()
            opt = torch.optim.SGD(net.parameters(), lr=0.001, momentum=0.9)
            loss = nn.CrossEntropyLoss()
            x, y = torch.rand(batch, *shape), torch.randint(0, 10, (batch,))

            def train():
                opt.zero_grad()
                loss(net(x), y).backward()
                opt.step()

            def infer():
                with torch.no_grad():
                    net(x)

            # About a second of work per timed run on a 2-core machine.
            steps = max(10, 20000 // (batch * (1 if name in ("mlp", "tiny-cnn") else 30)))
            for _ in range(3):
                train()
                infer()
            train_median, train_best = rates(train, batch, steps)
            infer_median, infer_best = rates(infer, batch, steps)
            print(f"{name:10s} {batch:5d} {train_median:13.0f} {train_best:10.0f} {infer_median:13.0f} {infer_best:10.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
