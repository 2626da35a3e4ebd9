#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets: small, real files of each format (NumPy writes the .npy
and .npz files, zlib the PNGs, gzip and tarfile the archives). Usage: make-seeds.py OUTPUT_FOLDER
(one sub-folder per target). Deterministic: the same files on every run."""
import gzip, io, json, os, struct, sys, tarfile, zlib
import numpy as np

out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "Seeds")
rng = np.random.default_rng(12)

def put(target, name, data):
    folder = os.path.join(out, target)
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, name), "wb") as f:
        f.write(data)

def gz(data):
    return gzip.compress(data, mtime=0)

# IDX: images (rank 3) and labels (rank 1), raw and gzipped.
def idx(dims, payload):
    return struct.pack(">I", 0x0800 | len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + bytes(payload)
images = idx([3, 4, 4], rng.integers(0, 256, 48, dtype=np.uint8))
labels = idx([3], [1, 7, 9])
put("IDX", "images-idx3-ubyte", images)
put("IDX", "labels-idx1-ubyte", labels)
put("IDX", "images-idx3-ubyte.gz", gz(images))
put("IDX", "labels-idx1-ubyte.gz", gz(labels))
put("IDX", "empty-idx1-ubyte", idx([0], []))

# CIFAR-10: two records, and a tar.gz holding a batch.
record = lambda label: bytes([label]) + bytes(rng.integers(0, 256, 3072, dtype=np.uint8))
batch = record(3) + record(9)
put("CIFAR", "data_batch_1.bin", batch)
tar_bytes = io.BytesIO()
with tarfile.open(fileobj=tar_bytes, mode="w", format=tarfile.USTAR_FORMAT) as t:
    for name, content in [("cifar-10-batches-bin/data_batch_1.bin", record(1)), ("cifar-10-batches-bin/batches.meta.txt", b"a\nb\n")]:
        info = tarfile.TarInfo(name); info.size = len(content); info.mtime = 0
        t.addfile(info, io.BytesIO(content))
put("CIFAR", "cifar-10-binary.tar.gz", gz(tar_bytes.getvalue()))

# .npy: each dtype read, both byte orders, Fortran order, 0-d and empty arrays, format version 2.
def npy(a, version=None):
    b = io.BytesIO()
    if version is None:
        np.save(b, a, allow_pickle=False)
    else:
        np.lib.format.write_array(b, a, version=version, allow_pickle=False)
    return b.getvalue()
put("NPY", "f4.npy", npy(np.arange(6, dtype="<f4").reshape(2, 3)))
put("NPY", "f8-fortran.npy", npy(np.asfortranarray(np.arange(6, dtype="<f8").reshape(2, 3))))
put("NPY", "i8.npy", npy(np.array([-3, 0, 5], dtype="<i8")))
put("NPY", "i4-big-endian.npy", npy(np.array([1, -2, 3], dtype=">i4")))
put("NPY", "u1.npy", npy(np.array([[0, 255], [7, 8]], dtype="u1")))
put("NPY", "scalar.npy", npy(np.array(3.5, dtype="<f4")))
put("NPY", "empty.npy", npy(np.zeros((0, 3), dtype="<f4")))
put("NPY", "v2.npy", npy(np.arange(4, dtype="<f4"), version=(2, 0)))
put("NPY", "u2-unsupported.npy", npy(np.array([1, 2], dtype="<u2")))

# .npz: stored and deflated, as np.savez and np.savez_compressed write them.
def npz(compressed, **arrays):
    b = io.BytesIO()
    (np.savez_compressed if compressed else np.savez)(b, **arrays)
    return b.getvalue()
put("NPZ", "stored.npz", npz(False, x=np.arange(12, dtype="<f4").reshape(3, 4), y=np.array([0, 1, 2])))
put("NPZ", "compressed.npz", npz(True, x=np.zeros((4, 4), dtype="<f4"), label=np.array([1], dtype="u1")))

# Model and checkpoint archives in the layout ModelArchive and Checkpoint write.
def text(s):
    return np.frombuffer(s.encode(), dtype="u1")
spec = "conv 2 3x3\nrelu\nmaxpool 2\nflatten\ndense 3"
model = {
    "conv1.weight": rng.standard_normal((2, 1, 3, 3)).astype("<f4"), "conv1.bias": np.zeros(2, dtype="<f4"),
    "dense1.weight": rng.standard_normal((3, 8)).astype("<f4"), "dense1.bias": np.zeros(3, dtype="<f4"),
    "norm_mean": np.array([0.1], dtype="<f4"), "norm_std": np.array([0.3], dtype="<f4"),
    "meta.spec": text(spec), "meta.input_shape": np.array([1, 6, 6], dtype="<i8"), "meta.model": text("custom"),
    "meta.loss": text("softmax-cross-entropy"), "meta.classes": text("a\nb\nc"), "meta.dataset": text("toy"),
}
put("Model", "model.npz", npz(False, **model))
checkpoint = dict(model)
checkpoint.update({
    "optimizer.conv1.weight.velocity": np.zeros((2, 1, 3, 3), dtype="<f4"),
    "train.progress": text(json.dumps({"bestValidationAccuracy": -1, "epochsDone": 1, "epochsWithoutImprovement": 0,
                                       "iteration": 4, "stoppedEarly": False}, sort_keys=True)),
    "train.optimizer_steps": np.array([4], dtype="<i8"), "train.settings": text('{"epochs":2}'),
})
put("Model", "checkpoint.npz", npz(False, **checkpoint))
put("Model", "model-compressed.npz", npz(True, **model))
bn = dict(model)
bn["meta.spec"] = text("flatten\nbatchnorm\ndense 3")
bn["meta.input_shape"] = np.array([4], dtype="<i8")
for k in ["conv1.weight", "conv1.bias"]: bn.pop(k)
bn.update({"batchnorm1.weight": np.ones(4, dtype="<f4"), "batchnorm1.bias": np.zeros(4, dtype="<f4"),
           "batchnorm1.running_mean": np.zeros(4, dtype="<f4"), "batchnorm1.running_var": np.ones(4, dtype="<f4"),
           "dense1.weight": np.zeros((3, 4), dtype="<f4")})
put("Model", "batchnorm.npz", npz(False, **bn))

# PNG: gray, RGB, RGBA, palette, 16-bit, every row filter.
def png(width, height, color_type, depth, rows, palette=None):
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color_type, 0, 0, 0)
    body = chunk(b"IHDR", ihdr)
    if palette is not None:
        body += chunk(b"PLTE", palette)
    body += chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b"")
    return b"\x89PNG\r\n\x1a\n" + body
def rows(width, height, bpp, filters):
    return b"".join(bytes([filters[y % len(filters)]]) + bytes(rng.integers(0, 256, width * bpp, dtype=np.uint8)) for y in range(height))
put("PNG", "gray8.png", png(4, 4, 0, 8, rows(4, 4, 1, [0, 1, 2, 3, 4])))
put("PNG", "rgb8.png", png(3, 3, 2, 8, rows(3, 3, 3, [4, 3, 2])))
put("PNG", "rgba8.png", png(2, 2, 6, 8, rows(2, 2, 4, [1])))
put("PNG", "graya16.png", png(2, 2, 4, 16, rows(2, 2, 4, [2])))
put("PNG", "palette.png", png(3, 2, 3, 8, bytes([0, 0, 1, 2, 0, 2, 1, 0]), palette=bytes(range(9))))

# PGM / PPM: text and binary, 8 and 16 bits, with a comment.
put("PNM", "p2.pgm", b"P2\n# comment\n3 2\n255\n0 10 20\n30 40 255\n")
put("PNM", "p3.ppm", b"P3\n2 1\n15\n1 2 3 4 5 6\n")
put("PNM", "p5.pgm", b"P5\n2 2\n255\n" + bytes([0, 64, 128, 255]))
put("PNM", "p6-16bit.ppm", b"P6\n1 1\n65535\n" + bytes([0, 1, 2, 3, 4, 5]))

# Network specs: every keyword and option form.
specs = {
    "lenet5.txt": "input 1x28x28\nconv 6 5x5 pad 2\nrelu\nmaxpool 2\nconv 16 5x5\nrelu\nmaxpool 2\nflatten\ndense 120\nrelu\ndense 84\nrelu\ndense 10",
    "options.txt": "conv 4 3x3 stride 2 pad same; leakyrelu 0.1; avgpool 2x2 stride 1; batchnorm; dropout 0.25; flatten; dense 5; logsoftmax",
    "padding.txt": "input 3x8x8 # rgb\nconv 2 3x5 stride 1x2 pad 1,0,2,1\ntanh\nmaxpool 2 stride 2\nsigmoid\nflatten\nfc 2",
    "mlp.txt": "input 16\ndense 8\nrelu\ndense 2",
}
for name, s in specs.items():
    put("Spec", name, s.encode())

# CSV lines: 2x2 and 28x28 images (four pixels or 784, then the label).
put("CSV", "tiny.csv", b"0,10,20,255,3\n1,2,3,4,9\r\n")
put("CSV", "digit.csv", (",".join(str(v) for v in rng.integers(0, 256, 784)) + ",7\n").encode())
put("CSV", "tiny.csv.gz", gz(b"5,6,7,8,0\n"))
