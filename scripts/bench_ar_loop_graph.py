"""Would one ONNX `Loop` graph for the whole autoregressive sampling loop beat the runtime's
Python loop over `ar_step.onnx`? Builds that graph (the step graph as the loop body, the
sampler as ONNX operators), checks it draws the same codes, and times both.

    python scripts/bench_ar_loop_graph.py [--size 128x4] [--runs 5]

Random weights (the cost does not depend on what the network learned), one guided image.
Measured 2026-11-28 on the quiet 2-core machine (docs/generation.md, "The autoregressive generator"):
same codes, and no faster, so bundles keep the standard per-step graph.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from bench_ar_step import export_step  # scripts/ is on the path when run as a script

from artgen.models.ar_predictor import ARConfig
from export.bundle import _quantize, ar_step_names
from export.runtime import pick_codes


def build_loop_graph(step_path: Path, out_path: Path, layers: int, positions: int) -> None:
    """The step graph's inputs plus noise (B, N, K), guidance, temperature (float32 scalars)
    and top_k (int64 (1,)) in; codes (B, N) out. The loop body is the step graph's nodes
    followed by guidance, top-k and Gumbel-max, node for node what the runtime does in numpy."""
    import onnx
    from onnx import TensorProto, helper

    step = onnx.load(str(step_path))
    g = step.graph
    carried = ["token"] + [f"past_key_{i}" for i in range(layers)] + [f"past_value_{i}" for i in range(layers)]
    rename = {name: f"loop_{name}" for name in carried}
    body_nodes = []
    for node in g.node:
        new = onnx.NodeProto()
        new.CopyFrom(node)
        new.input[:] = [rename.get(x, x) for x in node.input]
        body_nodes.append(new)
    make, f32, i64 = helper.make_node, TensorProto.FLOAT, TensorProto.INT64
    body_nodes += [
        make("Split", ["logits"], ["loop_cond_logits", "loop_uncond_logits"], axis=0),
        make("Sub", ["loop_cond_logits", "loop_uncond_logits"], ["loop_diff"]),
        make("Mul", ["guidance", "loop_diff"], ["loop_scaled"]),
        make("Add", ["loop_uncond_logits", "loop_scaled"], ["loop_guided"]),
        make("TopK", ["loop_guided", "top_k"], ["loop_top_values", "loop_top_indices"], axis=-1),
        make("ReduceMin", ["loop_top_values"], ["loop_kth"], axes=[-1], keepdims=1),
        make("Less", ["loop_guided", "loop_kth"], ["loop_below"]),
        make("Constant", [], ["loop_minus_inf"], value=helper.make_tensor("v", f32, [], [-np.inf])),
        make("Where", ["loop_below", "loop_minus_inf", "loop_guided"], ["loop_kept"]),
        make("Div", ["loop_kept", "temperature"], ["loop_tempered"]),
        make("Gather", ["noise", "loop_t"], ["loop_noise_t"], axis=1),
        make("Add", ["loop_tempered", "loop_noise_t"], ["loop_scores"]),
        make("ArgMax", ["loop_scores"], ["loop_code"], axis=-1, keepdims=0),
        make("Concat", ["loop_code", "loop_code"], ["loop_code_twice"], axis=0),
        make("Constant", [], ["loop_axis1"], value=helper.make_tensor("a", i64, [1], [1])),
        make("Unsqueeze", ["loop_code_twice", "loop_axis1"], ["loop_next_token"]),
        make("Identity", ["loop_cond_in"], ["loop_cond_out"]),
    ]
    for i in range(layers):
        body_nodes += [make("Identity", [f"present_key_{i}"], [f"loop_out_key_{i}"]),
                       make("Identity", [f"present_value_{i}"], [f"loop_out_value_{i}"])]
    cache = lambda name: helper.make_tensor_value_info(name, f32, None)  # noqa: E731
    body = helper.make_graph(
        body_nodes, "ar_sample_step",
        [helper.make_tensor_value_info("loop_t", i64, []), helper.make_tensor_value_info("loop_cond_in", TensorProto.BOOL, []),
         helper.make_tensor_value_info("loop_token", i64, None)] + [cache(rename[n]) for n in carried[1:]],
        [helper.make_tensor_value_info("loop_cond_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("loop_next_token", i64, None)]
        + [cache(f"loop_out_key_{i}") for i in range(layers)] + [cache(f"loop_out_value_{i}") for i in range(layers)]
        + [helper.make_tensor_value_info("loop_code", i64, None)])
    nodes = [make("Constant", [], ["trip_count"], value=helper.make_tensor("n", i64, [], [positions])),
             make("Constant", [], ["keep_going"], value=helper.make_tensor("c", TensorProto.BOOL, [], [True])),
             make("Loop", ["trip_count", "keep_going", *carried],
                  ["final_token"] + [f"final_{n}" for n in carried[1:]] + ["codes_by_position"], body=body),
             make("Transpose", ["codes_by_position"], ["codes"], perm=[1, 0])]
    inputs = [i for i in g.input if i.name in carried] + [i for i in g.input if i.name not in carried] + [
        helper.make_tensor_value_info("noise", f32, ["batch", positions, "codebook"]),
        helper.make_tensor_value_info("guidance", f32, []), helper.make_tensor_value_info("temperature", f32, []),
        helper.make_tensor_value_info("top_k", i64, [1])]
    graph = helper.make_graph(nodes, "ar_sample", inputs, [helper.make_tensor_value_info("codes", i64, ["batch", positions])],
                              initializer=list(g.initializer))
    model = helper.make_model(graph, opset_imports=list(step.opset_import))
    model.ir_version = step.ir_version
    onnx.save(model, str(out_path))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", default="128x4", help="WIDTHxLAYERS")
    ap.add_argument("--runs", type=int, default=5)
    args = ap.parse_args()
    width, layers = (int(x) for x in args.size.split("x"))
    cfg = ARConfig(width=width, layers=layers, heads=max(2, width // 32))
    h, hs, N, K = cfg.heads, cfg.head_width, cfg.positions, cfg.codebook_size
    tmp = Path(tempfile.mkdtemp())
    try:
        step_path = export_step(cfg, tmp)
        _quantize(step_path)
        loop_path = tmp / "ar_sample.onnx"
        build_loop_graph(step_path, loop_path, layers, N)
        options = ort.SessionOptions()
        options.intra_op_num_threads, options.log_severity_level = 1, 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        step = ort.InferenceSession(str(step_path), options, providers=["CPUExecutionProvider"])
        loop = ort.InferenceSession(str(loop_path), options, providers=["CPUExecutionProvider"])
        context_names, past_names, _ = ar_step_names(layers)
        rng = np.random.default_rng(0)
        context = {n: rng.standard_normal((2, h, hs, 8)).astype(np.float32) for n in context_names[:layers]}
        context.update({n: rng.standard_normal((2, h, 8, hs)).astype(np.float32) for n in context_names[layers:2 * layers]})
        context["cross_bias"] = np.zeros((2, 1, 1, 8), np.float32)
        start = {**context, **{n: np.zeros((2, h, 0, hs), np.float32) for n in past_names},
                 "token": np.full((2, 1), cfg.start_id, np.int64)}
        noise = rng.gumbel(size=(1, N, K)).astype(np.float32)

        def python_loop():
            feed, codes = dict(start), []
            for t in range(N):
                out = step.run(None, feed)
                code = pick_codes(out[0][1:] + np.float32(3.0) * (out[0][:1] - out[0][1:]), noise[:, t], 1.0, 0)
                codes.append(code)
                feed.update(zip(past_names, out[1:]))
                feed["token"] = np.concatenate([code, code])[:, None]
            return np.stack(codes, 1)

        def graph_loop():
            return loop.run(None, {**start, "noise": noise, "guidance": np.array(3.0, np.float32),
                                   "temperature": np.array(1.0, np.float32), "top_k": np.array([K], np.int64)})[0]

        same = float((python_loop() == graph_loop()).mean())
        for name, fn in (("python loop over ar_step.onnx", python_loop), ("one Loop graph", graph_loop)) * 2:
            seconds = []
            for _ in range(args.runs):
                t0 = time.perf_counter()
                fn()
                seconds.append(time.perf_counter() - t0)
            print(f"{args.size} int8, {name}: p50 {1000 * np.median(seconds):.1f} ms")
        print(f"codes equal: {same:.1%}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
