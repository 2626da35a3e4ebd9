"""Inference latency of the zoo networks: ConvNet against ONNX Runtime and PyTorch, side by side in one run.

Not part of the build or the tests. Needs a release build and the packages of requirements-bench.txt:

    swift build -c release
    python3 -m venv .venv-bench && .venv-bench/bin/pip install -r Benchmarks/requirements-bench.txt
    .venv-bench/bin/python Benchmarks/onnx_reference.py [--models lenet5,tf-cnn,two-conv] [--rounds 3] [--throughput]

For each network it trains a model briefly with `convnet train` (the weights do not change the work),
exports it with `convnet export` and removes the graph's two normalisation nodes (ConvNet's figure times
the network alone, too). Then, in each round and for each network in turn:
- ConvNet: `convnet bench --model NAME --batch-size 1 --threads 1 --json` (median and p99 of calls timed
  one by one, after a warm-up);
- ONNX Runtime: intra_op_num_threads=1, inter_op_num_threads=1, sequential, all graph optimisations;
- PyTorch: the same network (as in pytorch_reference.py), torch.set_num_threads(1), torch.inference_mode().
ONNX Runtime and PyTorch are timed like ConvNet: 0.3 s of warm-up, then single calls timed one by one
for about a second. The table gives per network the median over the rounds of each figure, in µs.
--throughput adds batch 64 on 2 threads: inference images per second of each engine.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_reference import zoo  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def convnet(binary, *args):
    out = subprocess.run([binary, *args], check=True, capture_output=True, text=True)
    return out.stdout


def export(binary, name, directory):
    """Trains `name` for one short epoch, exports it, and strips the normalisation nodes."""
    run = os.path.join(directory, name)
    convnet(binary, "train", "--model", name, "--epochs", "1", "--train-limit", "256", "--out", run)
    path = os.path.join(directory, name + ".onnx")
    convnet(binary, "export", "--weights", os.path.join(run, "model.npz"), "-o", path)
    model = onnx.load(path)
    graph = model.graph
    drop = [n for n in graph.node if n.name in ("normalize_sub", "normalize")]
    if drop:
        last = drop[-1].output[0]
        for n in graph.node:
            n.input[:] = ["image" if i == last else i for i in n.input]
        for n in drop:
            graph.node.remove(n)
        for init in [i for i in graph.initializer if i.name in ("norm_mean", "norm_inv_std")]:
            graph.initializer.remove(init)
    onnx.checker.check_model(model)
    onnx.save(model, path)
    return path


def latencies(call, seconds=1.0):
    start = time.perf_counter()
    while time.perf_counter() - start < 0.3:
        call()
    times = []
    start = time.perf_counter_ns()
    while len(times) < 100 or (time.perf_counter_ns() - start < seconds * 1e9 and len(times) < 100_000):
        before = time.perf_counter_ns()
        call()
        times.append((time.perf_counter_ns() - before) / 1e3)
    times.sort()
    return times[len(times) // 2], times[min(len(times) - 1, int(np.ceil(0.99 * len(times))) - 1)]


def throughput(call, batch, seconds=1.0):
    start = time.perf_counter()
    while time.perf_counter() - start < 0.3:
        call()
    calls, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        call()
        calls += 1
    return batch * calls / (time.perf_counter() - start)


def ort_session(path, threads):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--convnet", default=os.path.join(ROOT, ".build", "release", "convnet"))
    parser.add_argument("--models", default="mlp,tiny-cnn,lenet5,tf-cnn,two-conv")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--throughput", action="store_true", help="also batch 64 on 2 threads")
    args = parser.parse_args()
    names = args.models.split(",")
    print(f"onnxruntime {ort.__version__}, torch {torch.__version__} ({torch.backends.cpu.get_cpu_capability()}), "
          f"{args.rounds} rounds", flush=True)
    results = {name: {} for name in names}

    def record(name, key, value):
        results[name].setdefault(key, []).append(value)

    with tempfile.TemporaryDirectory() as directory:
        paths = {name: export(args.convnet, name, directory) for name in names}
        for r in range(args.rounds):
            for name in names:
                shape, make = zoo()[name]
                row = json.loads(convnet(args.convnet, "bench", "--model", name, "--batch-size", "1", "--threads", "1",
                                         "--repeats", "3", "--json").splitlines()[-1])
                record(name, "convnet", (row["latency_median_us"], row["latency_p99_us"]))
                session = ort_session(paths[name], 1)
                feed = {session.get_inputs()[0].name: np.random.rand(1, *shape).astype(np.float32)}
                record(name, "ort", latencies(lambda: session.run(None, feed)))
                torch.set_num_threads(1)
                torch.manual_seed(1)
                net = make().eval()
                x = torch.rand(1, *shape)
                with torch.inference_mode():
                    record(name, "torch", latencies(lambda: net(x)))
                if args.throughput:
                    row = json.loads(convnet(args.convnet, "bench", "--model", name, "--batch-size", "64", "--threads",
                                             "2", "--repeats", "3", "--json").splitlines()[-1])
                    record(name, "convnet64", row["infer_images_per_second"])
                    session2 = ort_session(paths[name], 2)
                    feed64 = {session2.get_inputs()[0].name: np.random.rand(64, *shape).astype(np.float32)}
                    record(name, "ort64", throughput(lambda: session2.run(None, feed64), 64))
                    torch.set_num_threads(2)
                    x64 = torch.rand(64, *shape)
                    with torch.inference_mode():
                        record(name, "torch64", throughput(lambda: net(x64), 64))
                print(f"round {r + 1}: {name} " + ", ".join(
                    f"{k} {v[-1][0]:.1f}/{v[-1][1]:.1f} µs" if isinstance(v[-1], tuple) else f"{k} {v[-1]:.0f} img/s"
                    for k, v in results[name].items()), flush=True)

    def med(pairs, i):
        return statistics.median(p[i] for p in pairs)

    print("\nbatch 1, 1 thread, µs per call (median over rounds of each run's median / p99)")
    print("| network | ConvNet median / p99 | ONNX Runtime median / p99 | PyTorch median / p99 | ORT / ConvNet | PyTorch / ConvNet |")
    print("|---|---|---|---|---|---|")
    for name in names:
        c, o, t = results[name]["convnet"], results[name]["ort"], results[name]["torch"]
        print(f"| {name} | {med(c, 0):.1f} / {med(c, 1):.1f} | {med(o, 0):.1f} / {med(o, 1):.1f} | "
              f"{med(t, 0):.1f} / {med(t, 1):.1f} | {med(o, 0) / med(c, 0):.2f}x | {med(t, 0) / med(c, 0):.2f}x |")
    if args.throughput:
        print("\nbatch 64, 2 threads, inference images/s (median over rounds)")
        print("| network | ConvNet | ONNX Runtime | PyTorch | ConvNet / ORT |")
        print("|---|---|---|---|---|")
        for name in names:
            c, o, t = (statistics.median(results[name][k]) for k in ("convnet64", "ort64", "torch64"))
            print(f"| {name} | {c:,.0f} | {o:,.0f} | {t:,.0f} | {c / o:.2f}x |")


if __name__ == "__main__":
    main()
