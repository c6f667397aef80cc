"""Where the autoregressive step's time goes in ONNX Runtime on this machine: the cost of one
`run` call and of one trivial kernel, of one small fp32 MatMul, and of a bundle's `ar_step.onnx`
at growing cache lengths. The step loop calls `ar_step` 256 times per image, so these three
decide its latency more than the arithmetic does.

    python scripts/ort_step_anatomy.py [--bundle artgen/assets/tiny] [--runs 256]

Single-threaded sessions, as the runtime runs the step graph; medians of 7 rounds.
"""

from __future__ import annotations

import argparse
import platform
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from export.runtime import Runtime


def one_thread(model_bytes_or_path) -> ort.InferenceSession:
    o = ort.SessionOptions()
    o.intra_op_num_threads, o.inter_op_num_threads, o.log_severity_level = 1, 1, 3
    return ort.InferenceSession(model_bytes_or_path, o, providers=["CPUExecutionProvider"])


def chain(n: int, op: str, shape: tuple[int, ...], width: int = 128) -> ort.InferenceSession:
    """`n` nodes of `op` one after another: Relu (a trivial kernel) or MatMul by a width x width weight."""
    nodes, inits, prev = [], [], "x"
    for i in range(n):
        if op == "MatMul":
            inits.append(numpy_helper.from_array((np.random.default_rng(i).standard_normal((width, width)) * 0.05)
                                                 .astype(np.float32), f"w{i}"))
            nodes.append(helper.make_node("MatMul", [prev, f"w{i}"], [f"y{i}"]))
        else:
            nodes.append(helper.make_node(op, [prev], [f"y{i}"]))
        prev = f"y{i}"
    graph = helper.make_graph(nodes, "chain", [helper.make_tensor_value_info("x", TensorProto.FLOAT, shape)],
                              [helper.make_tensor_value_info(prev, TensorProto.FLOAT, shape)], initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return one_thread(model.SerializeToString())


def io_only(inputs: int, outputs: int, shape: tuple[int, ...]) -> ort.InferenceSession:
    """`inputs` tensors in, the first `outputs` of them out again through Identity: the cost of binding them."""
    nodes = [helper.make_node("Identity", [f"x{i}"], [f"y{i}"]) for i in range(outputs)]
    graph = helper.make_graph(nodes, "io", [helper.make_tensor_value_info(f"x{i}", TensorProto.FLOAT, shape) for i in range(inputs)],
                              [helper.make_tensor_value_info(f"y{i}", TensorProto.FLOAT, shape) for i in range(outputs)])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return one_thread(model.SerializeToString())


def per_run_us(session: ort.InferenceSession, feed: dict, runs: int) -> float:
    for _ in range(20):
        session.run(None, feed)
    rounds = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(runs):
            session.run(None, feed)
        rounds.append((time.perf_counter() - start) * 1e6 / runs)
    return float(np.median(rounds))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", type=Path, default=Path("artgen/assets/tiny"))
    ap.add_argument("--runs", type=int, default=256)
    args = ap.parse_args()
    print(f"{platform.processor() or platform.machine()}, onnxruntime {ort.__version__}, one thread")

    x = np.zeros((2, 128), np.float32)
    one, many = per_run_us(chain(1, "Relu", x.shape), {"x": x}, args.runs), per_run_us(chain(183, "Relu", x.shape), {"x": x}, args.runs)
    print(f"run call with one trivial kernel: {one:.1f} us; each further trivial kernel: {(many - one) / 182:.2f} us")
    io = per_run_us(io_only(15, 7, (2, 4, 16, 32)), {f"x{i}": np.zeros((2, 4, 16, 32), np.float32) for i in range(15)}, args.runs)
    print(f"run call binding 15 inputs and returning 7 outputs (the step graph's count, small tensors): {io:.1f} us")
    mm = per_run_us(chain(25, "MatMul", x.shape), {"x": x}, args.runs)
    print(f"fp32 MatMul (2 x 128) @ (128 x 128): {(mm - one) / 25:.2f} us each (25 in a chain)")

    rt = Runtime(args.bundle, threads=1)
    if rt.generator != "ar":
        raise SystemExit(f"{args.bundle} holds the masked generator: this probe times the autoregressive step graph")
    d = rt.meta["sampling"]
    states, mask = rt.encode(["warm, wavy, vivid"])
    states, mask = np.concatenate([states, states]), np.concatenate([mask, np.zeros_like(mask)])  # one guided image
    names = [o.name for o in rt.sessions["ar_context"].get_outputs()]
    feed = dict(zip(names, rt.sessions["ar_context"].run(None, {"states": states, "attention_mask": mask})))
    feed["token"] = np.full((2, 1), d["start_id"], np.int64)
    step = rt.sessions["ar_step"]
    if "above" in [i.name for i in step.get_inputs()]:
        feed["above"] = np.full((2, 3), d["start_id"], np.int64)
    at_start = None  # the call with an empty cache
    for past in (0, 64, 128, 255):
        for i in range(d["layers"]):
            for kind in ("key", "value"):
                feed[f"past_{kind}_{i}"] = np.zeros((2, d["heads"], past, d["head_width"]), np.float32)
        us = per_run_us(step, feed, max(args.runs // 4, 16))
        print(f"{args.bundle}/ar_step.onnx, cache {past:3d} positions: {us:.0f} us per call")
        at_start = at_start or us
    print(f"the step loop ({rt.meta['grid'] ** 2} calls) spends ~{at_start * rt.meta['grid'] ** 2 / 1000:.0f} ms before its "
          "cache grows; the rest of its time is the cache's growth")


if __name__ == "__main__":
    main()
