#!/usr/bin/env python3
"""Writes the onnxruntime-web peer graphs of the benchmark (bench/peers/ort.js).

    /usr/bin/python3 bench/make_onnx.py OUTDIR 512x8 768x12 16x8

For every embed_dim x num_heads pair it writes, into OUTDIR,

    {variant}-{kind}-e{E}h{H}.onnx

  variant  attention  com.microsoft Attention (packed QKV projection + attention,
                      self-attention only) then the output projection
           mha        com.microsoft MultiHeadAttention fed by three projection
                      MatMuls (its bias input adds the projection biases)
           basic      plain ONNX: MatMul/Add/Reshape/Transpose/Softmax (+Mul for
                      the 1/sqrt(d) scale, Trilu for the causal mask)
  kind     self       input x [B, L, E]                     (key = value = query)
           causal     input x [B, L, E], key j > query i blocked
           cross      inputs q [B, Lq, E], k [B, Lk, E], v [B, Lk, E]

B and the lengths are symbolic, so one graph serves every shape with that E, H.

The weights are NOT in the graphs: every initializer points into an external
file "weights.bin" that the benchmark hands to onnxruntime at session creation
(InferenceSession option `externalData`). That way onnxruntime runs on exactly
the Float32Arrays loaded into mha-wasm and the other peers, and the graphs never
go stale when the weights change. The layout of weights.bin (float32,
little-endian, PyTorch's nn.MultiheadAttention parameters, transposed where a
MatMul wants [in, out]) is shared with bench/weights.js:

    WqT [E, E]  WkT [E, E]  WvT [E, E]  WoT [E, E]  bq [E]  bk [E]  bv [E]  bo [E]

Needs Debian's python3-onnx (any onnx >= 1.12: opset 17, IR version 8).
"""
import os
import sys

import onnx
from onnx import TensorProto, helper

OPSET = 17
WEIGHTS_FILE = "weights.bin"


def external(name, dims, offset):
    """A float32 initializer whose bytes live in weights.bin at `offset`."""
    t = TensorProto()
    t.name = name
    t.data_type = TensorProto.FLOAT
    t.dims.extend(dims)
    t.data_location = TensorProto.EXTERNAL
    length = 4 * len_of(dims)
    for key, value in (("location", WEIGHTS_FILE), ("offset", str(offset)), ("length", str(length))):
        entry = t.external_data.add()
        entry.key = key
        entry.value = value
    return t, offset + length


def weight_initializers(E):
    inits, offset = [], 0
    for name in ("WqT", "WkT", "WvT", "WoT"):
        t, offset = external(name, [E, E], offset)
        inits.append(t)
    for name in ("bq", "bk", "bv", "bo"):
        t, offset = external(name, [E], offset)
        inits.append(t)
    return inits


def const_i64(name, values):
    return helper.make_tensor(name, TensorProto.INT64, [len(values)], values)


def inputs_for(kind, E):
    if kind == "cross":
        return [helper.make_tensor_value_info("q", TensorProto.FLOAT, ["B", "Lq", E]),
                helper.make_tensor_value_info("k", TensorProto.FLOAT, ["B", "Lk", E]),
                helper.make_tensor_value_info("v", TensorProto.FLOAT, ["B", "Lk", E])], ("q", "k", "v")
    return [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "L", E])], ("x", "x", "x")


def output_projection(nodes, z):
    nodes.append(helper.make_node("MatMul", [z, "WoT"], ["y_nobias"]))
    nodes.append(helper.make_node("Add", ["y_nobias", "bo"], ["y"]))


def basic_nodes(kind, E, H):
    """nn.MultiheadAttention spelled out in standard ONNX ops, as torch.onnx would."""
    d = E // H
    xq, xk, xv = inputs_for(kind, E)[1]
    extra = [const_i64("split_heads", [0, 0, H, d]), const_i64("merge_heads", [0, 0, E]),
             helper.make_tensor("scale", TensorProto.FLOAT, [], [1.0 / d ** 0.5])]
    n = []
    for p, x, w, b in (("q", xq, "WqT", "bq"), ("k", xk, "WkT", "bk"), ("v", xv, "WvT", "bv")):
        n.append(helper.make_node("MatMul", [x, w], [f"{p}_mm"]))
        n.append(helper.make_node("Add", [f"{p}_mm", b], [f"{p}_proj"]))
        n.append(helper.make_node("Reshape", [f"{p}_proj", "split_heads"], [f"{p}_bshd"]))
    # [B, L, H, d] -> q, v: [B, H, L, d]; k: [B, H, d, L] (so scores are one MatMul).
    n.append(helper.make_node("Transpose", ["q_bshd"], ["q_heads"], perm=[0, 2, 1, 3]))
    n.append(helper.make_node("Transpose", ["k_bshd"], ["k_heads_t"], perm=[0, 2, 3, 1]))
    n.append(helper.make_node("Transpose", ["v_bshd"], ["v_heads"], perm=[0, 2, 1, 3]))
    # PyTorch scales q before the product (fewer multiplies than scaling scores).
    n.append(helper.make_node("Mul", ["q_heads", "scale"], ["q_scaled"]))
    n.append(helper.make_node("MatMul", ["q_scaled", "k_heads_t"], ["scores"]))
    probs_in = "scores"
    if kind == "causal":
        # mask[L, L] = -inf strictly above the diagonal, 0 elsewhere, built from the
        # runtime length so the graph stays shape-generic.
        extra += [const_i64("len_start", [1]), const_i64("len_end", [2])]
        n.append(helper.make_node("Shape", [xq], ["x_shape"]))
        n.append(helper.make_node("Slice", ["x_shape", "len_start", "len_end"], ["len"]))
        n.append(helper.make_node("Concat", ["len", "len"], ["mask_shape"], axis=0))
        n.append(helper.make_node("ConstantOfShape", ["mask_shape"], ["neg_inf"],
                                  value=helper.make_tensor("v", TensorProto.FLOAT, [1], [float("-inf")])))
        # Trilu keeps the upper triangle from diagonal k = 1 (j - i >= 1: the
        # future) and zeroes the rest.
        extra.append(helper.make_tensor("one", TensorProto.INT64, [], [1]))
        n.append(helper.make_node("Trilu", ["neg_inf", "one"], ["causal_mask"], upper=1))
        n.append(helper.make_node("Add", ["scores", "causal_mask"], ["scores_masked"]))
        probs_in = "scores_masked"
    n.append(helper.make_node("Softmax", [probs_in], ["probs"], axis=-1))
    n.append(helper.make_node("MatMul", ["probs", "v_heads"], ["z_heads"]))
    n.append(helper.make_node("Transpose", ["z_heads"], ["z_bshd"], perm=[0, 2, 1, 3]))
    n.append(helper.make_node("Reshape", ["z_bshd", "merge_heads"], ["concat"]))
    output_projection(n, "concat")
    return n, extra


def mha_nodes(kind, E, H):
    """com.microsoft.MultiHeadAttention: projections outside, attention fused."""
    xq, xk, xv = inputs_for(kind, E)[1]
    n = [helper.make_node("MatMul", [xq, "WqT"], ["q_mm"]),
         helper.make_node("MatMul", [xk, "WkT"], ["k_mm"]),
         helper.make_node("MatMul", [xv, "WvT"], ["v_mm"]),
         # Concat of initializers: constant-folded when the session is created.
         helper.make_node("Concat", ["bq", "bk", "bv"], ["qkv_bias"], axis=0)]
    attrs = {"num_heads": H}
    if kind == "causal":
        attrs["unidirectional"] = 1
    n.append(helper.make_node("MultiHeadAttention", ["q_mm", "k_mm", "v_mm", "qkv_bias"], ["concat"],
                              domain="com.microsoft", **attrs))
    output_projection(n, "concat")
    return n, []


def attention_nodes(kind, E, H):
    """com.microsoft.Attention: one packed [E, 3E] projection GEMM + attention."""
    assert kind != "cross", "com.microsoft.Attention is self-attention only"
    n = [helper.make_node("Concat", ["WqT", "WkT", "WvT"], ["Wqkv"], axis=1),
         helper.make_node("Concat", ["bq", "bk", "bv"], ["bqkv"], axis=0)]
    attrs = {"num_heads": H}
    if kind == "causal":
        attrs["unidirectional"] = 1
    n.append(helper.make_node("Attention", ["x", "Wqkv", "bqkv"], ["concat"], domain="com.microsoft", **attrs))
    output_projection(n, "concat")
    return n, []


VARIANTS = {"attention": attention_nodes, "mha": mha_nodes, "basic": basic_nodes}
KINDS = ("self", "causal", "cross")


def build(variant, kind, E, H):
    nodes, extra = VARIANTS[variant](kind, E, H)
    graph = helper.make_graph(
        nodes, f"mha_{variant}_{kind}_e{E}h{H}", inputs_for(kind, E)[0],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", "Lq" if kind == "cross" else "L", E])],
        initializer=weight_initializers(E) + extra)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                    helper.make_opsetid("com.microsoft", 1)],
                              producer_name="mha-wasm bench/make_onnx.py")
    model.ir_version = 8
    check(model, full=(variant == "basic"))
    return model


def check(model, full):
    """onnx.checker on a copy whose external weights are inlined zeros: the
    checker insists on reading weights.bin, which only exists at run time.
    Full shape inference only on the standard-op graph (the checker has no
    com.microsoft schemas)."""
    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    for t in probe.graph.initializer:
        if t.data_location == TensorProto.EXTERNAL:
            zeros = helper.make_tensor(t.name, TensorProto.FLOAT, list(t.dims),
                                       bytes(4 * len_of(t.dims)), raw=True)
            t.CopyFrom(zeros)
    onnx.checker.check_model(probe, full_check=full)


def len_of(dims):
    n = 1
    for d in dims:
        n *= d
    return n


def main(argv):
    if len(argv) < 3:
        sys.exit(f"usage: {argv[0]} OUTDIR EXH [EXH ...]   (e.g. 512x8)")
    outdir = argv[1]
    os.makedirs(outdir, exist_ok=True)
    for spec in argv[2:]:
        E, H = (int(s) for s in spec.lower().split("x"))
        if E % H:
            sys.exit(f"{spec}: embed_dim must be divisible by num_heads")
        for variant in VARIANTS:
            for kind in KINDS:
                if variant == "attention" and kind == "cross":
                    continue
                path = os.path.join(outdir, f"{variant}-{kind}-e{E}h{H}.onnx")
                tmp = path + ".tmp"
                with open(tmp, "wb") as f:
                    f.write(build(variant, kind, E, H).SerializeToString())
                os.replace(tmp, path)  # never leave a half-written graph behind
    print(f"make_onnx.py: wrote graphs for {' '.join(argv[2:])} into {outdir}")


if __name__ == "__main__":
    main(sys.argv)
