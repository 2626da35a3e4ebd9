"""Checks an ONNX file written by `convnet export` and runs it in ONNX Runtime (used by the tests).

    python Benchmarks/onnx_check.py MODEL.onnx INPUTS.npy OUTPUTS.npy

Runs `onnx.checker.check_model` (full check, with shape inference), then ONNX Runtime on the CPU
(one intra-op thread, all graph optimisations) on INPUTS.npy (float32, N x the graph's input shape),
writes the graph's output to OUTPUTS.npy and prints one JSON line describing the model. Exits 1
with a message on stderr when the checker or ONNX Runtime rejects the model.
"""
import json
import sys

import numpy as np
import onnx
import onnxruntime as ort


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    model_path, inputs_path, outputs_path = sys.argv[1:]
    model = onnx.load(model_path)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as error:
        print(f"{model_path}: onnx.checker rejects the model: {error}", file=sys.stderr)
        sys.exit(1)
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    session = ort.InferenceSession(model_path, options, providers=["CPUExecutionProvider"])
    (graph_input,) = session.get_inputs()
    (graph_output,) = session.get_outputs()
    x = np.load(inputs_path).astype(np.float32, copy=False)
    y = session.run(None, {graph_input.name: x})[0]
    np.save(outputs_path, y.astype(np.float32))
    print(json.dumps({
        "checker": "passed",
        "ir_version": model.ir_version,
        "opset": [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")][0],
        "input": graph_input.name, "input_shape": [str(d) for d in graph_input.shape],
        "output": graph_output.name, "output_shape": [str(d) for d in graph_output.shape],
        "ops": sorted({n.op_type for n in model.graph.node}),
        "onnxruntime": ort.__version__, "onnx": onnx.__version__,
    }))


if __name__ == "__main__":
    main()
