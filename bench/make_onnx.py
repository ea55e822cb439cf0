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


# ---------------------------------------------------------------------------
# The attention layers of real models (bench/models.js, issues 20 and 21).
#
#     /usr/bin/python3 bench/make_onnx.py OUTDIR --models SPEC.json
#
# SPEC.json (written by bench/graphs.js) lists, per model key, the layer's
# sizes and features and the initializers of its "weights.bin" in byte order
# ({name, dims} float32, bench/models.js onnxLayout), and which graphs to
# write, each into OUTDIR/{graph}-{key}.onnx:
#
#   gqa-prefill  x [B, L, E] -> y: projection MatMuls (+ QK-norm) around
#                com.microsoft.GroupQueryAttention (rotary inside it from
#                cos_cache/sin_cache, softcap, local_window_size, scale as
#                attributes), inputs seqlens_k [B] (int32, L - 1) and
#                total_sequence_length (int32 scalar, L)
#   gqa-step     the same with past_key/past_value [B, Hkv, P, d] inputs and
#                present_key/present_value outputs: one decode step
#   basic-prefill  plain ONNX ops: MatMul, RMS norm as Pow/ReduceMean/Add/Sqrt/
#                Div/Mul, RoPE as Slice/Neg/Concat/Mul/Add with cos, sin [L, d]
#                inputs, grouped heads by Expand, Tanh softcap, an additive
#                mask [L, L] input (causal and window), Softmax
#   kv           plain ops: x [B, L, E] -> the keys (normed, rotated) and values
#                [B, Hkv, L, d] a cache holds after that prompt (cos, sin inputs)
#   mha-step     q projection + com.microsoft.MultiHeadAttention against key and
#                value already projected [B, H, M, d] + output projection
#   memory       x [B, M, E] -> those keys and values (the encoder memory)


def model_initializers(layout):
    inits, offset = [], 0
    for t in layout:
        tensor, offset = external(t["name"], t["dims"], offset)
        inits.append(tensor)
    return inits


def has(layout, name):
    return any(t["name"] == name for t in layout)


class Graph:
    """A list of nodes with fresh names and constants."""

    def __init__(self):
        self.nodes, self.consts, self.count = [], [], 0

    def op(self, op_type, inputs, domain=None, **attrs):
        self.count += 1
        out = f"{op_type.lower()}_{self.count}"
        kwargs = dict(attrs)
        if domain:
            kwargs["domain"] = domain
        self.nodes.append(helper.make_node(op_type, inputs, [out], **kwargs))
        return out

    def const(self, values, dtype=TensorProto.INT64, dims=None):
        self.count += 1
        name = f"const_{self.count}"
        self.consts.append(helper.make_tensor(name, dtype, dims if dims is not None else [len(values)], values))
        return name

    def scalar(self, value):
        return self.const([value], TensorProto.FLOAT, [])


def project(g, x, layout, p):
    y = g.op("MatMul", [x, f"W{p}T"])
    return g.op("Add", [y, f"b{p}"]) if has(layout, f"b{p}") else y


def rms_norm(g, x, weight, eps):
    """x / sqrt(mean(x^2) + eps) * weight over the last axis (Qwen3's q_norm/k_norm)."""
    mean = g.op("ReduceMean", [g.op("Pow", [x, g.scalar(2.0)])], axes=[-1], keepdims=1)
    return g.op("Mul", [g.op("Div", [x, g.op("Sqrt", [g.op("Add", [mean, g.scalar(eps)])])]), weight])


def heads(g, x, n, d, spec, norm):
    """[B, L, n*d] -> [B, n, L, d], RMS-normed per head when the model has QK-norm."""
    x = g.op("Reshape", [x, g.const([0, 0, n, d])])
    if spec.get("qkNorm") and norm:
        x = rms_norm(g, x, norm, spec["qkNorm"]["eps"])
    return g.op("Transpose", [x], perm=[0, 2, 1, 3])


def rotate(g, x, d):
    """RoPE, rotate_half layout, on [B, n, L, d] with cos, sin [L, d] inputs."""
    h = d // 2
    axis = g.const([3])
    x1 = g.op("Slice", [x, g.const([0]), g.const([h]), axis])
    x2 = g.op("Slice", [x, g.const([h]), g.const([d]), axis])
    rot = g.op("Concat", [g.op("Neg", [x2]), x1], axis=3)
    return g.op("Add", [g.op("Mul", [x, "cos"]), g.op("Mul", [rot, "sin"])])


def normed_flat(g, x, n, d, spec, norm):
    """[B, L, n*d] RMS-normed per head, back to [B, L, n*d] (GroupQueryAttention's input)."""
    if not spec.get("qkNorm"):
        return x
    y = rms_norm(g, g.op("Reshape", [x, g.const([0, 0, n, d])]), norm, spec["qkNorm"]["eps"])
    return g.op("Reshape", [y, g.const([0, 0, n * d])])


def out_proj(g, z, layout):
    y = g.op("MatMul", [z, "WoT"])
    return g.op("Add", [y, "bo"]) if has(layout, "bo") else y


def gqa_graph(spec, past):
    E, H, Hkv, d, layout = spec["E"], spec["H"], spec["Hkv"], spec["d"], spec["layout"]
    g = Graph()
    q = normed_flat(g, project(g, "x", layout, "q"), H, d, spec, "q_norm")
    k = normed_flat(g, project(g, "x", layout, "k"), Hkv, d, spec, "k_norm")
    v = project(g, "x", layout, "v")
    attrs = {"num_heads": H, "kv_num_heads": Hkv}
    rope = spec.get("rope") is not None
    if rope:
        attrs.update(do_rotary=1, rotary_interleaved=0)
    if spec.get("softcap"):
        attrs["softcap"] = float(spec["softcap"])
    if spec.get("slidingWindow"):
        attrs["local_window_size"] = int(spec["slidingWindow"])
    if spec.get("scale"):
        attrs["scale"] = float(spec["scale"])
    ins = [q, k, v, "past_key" if past else "", "past_value" if past else "", "seqlens_k", "total_sequence_length"]
    if rope:
        ins += ["cos_cache", "sin_cache"]
    outs = ["attn", "present_key", "present_value"]
    g.nodes.append(helper.make_node("GroupQueryAttention", ins, outs, domain="com.microsoft", **attrs))
    g.nodes.append(helper.make_node("Identity", [out_proj(g, "attn", layout)], ["y"]))
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "L", E])]
    if past:
        inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["B", Hkv, "P", d]) for n in ("past_key", "past_value")]
    inputs += [helper.make_tensor_value_info("seqlens_k", TensorProto.INT32, ["B"]),
               helper.make_tensor_value_info("total_sequence_length", TensorProto.INT32, [])]
    outputs = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", "L", E]),
               helper.make_tensor_value_info("present_key", TensorProto.FLOAT, ["B", Hkv, "T", d]),
               helper.make_tensor_value_info("present_value", TensorProto.FLOAT, ["B", Hkv, "T", d])]
    return g, inputs, outputs


def basic_prefill_graph(spec):
    E, H, Hkv, d, layout = spec["E"], spec["H"], spec["Hkv"], spec["d"], spec["layout"]
    rope = spec.get("rope") is not None
    g = Graph()
    q = heads(g, project(g, "x", layout, "q"), H, d, spec, "q_norm")
    k = heads(g, project(g, "x", layout, "k"), Hkv, d, spec, "k_norm")
    v = heads(g, project(g, "x", layout, "v"), Hkv, d, spec, None)
    if rope:
        q, k = rotate(g, q, d), rotate(g, k, d)
    # Grouped heads: key/value head j serves query heads j*G ... j*G + G - 1.
    G = H // Hkv
    if G > 1:
        expand = g.const([1, 1, G, 1, 1])
        k = g.op("Reshape", [g.op("Expand", [g.op("Unsqueeze", [k, g.const([2])]), expand]), g.const([0, H, -1, d])])
        v = g.op("Reshape", [g.op("Expand", [g.op("Unsqueeze", [v, g.const([2])]), expand]), g.const([0, H, -1, d])])
    scale = spec.get("scale") or 1.0 / d ** 0.5
    scores = g.op("MatMul", [g.op("Mul", [q, g.scalar(scale)]), g.op("Transpose", [k], perm=[0, 1, 3, 2])])
    if spec.get("softcap"):
        c = g.scalar(float(spec["softcap"]))
        scores = g.op("Mul", [g.op("Tanh", [g.op("Div", [scores, c])]), c])
    probs = g.op("Softmax", [g.op("Add", [scores, "mask"])], axis=-1)
    z = g.op("Transpose", [g.op("MatMul", [probs, v])], perm=[0, 2, 1, 3])
    z = g.op("Reshape", [z, g.const([0, 0, H * d])])
    g.nodes.append(helper.make_node("Identity", [out_proj(g, z, layout)], ["y"]))
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "L", E])]
    if rope:
        inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["L", d]) for n in ("cos", "sin")]
    inputs.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["L", "L"]))
    return g, inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", "L", E])]


def kv_graph(spec):
    E, Hkv, d, layout = spec["E"], spec["Hkv"], spec["d"], spec["layout"]
    rope = spec.get("rope") is not None
    g = Graph()
    k = heads(g, project(g, "x", layout, "k"), Hkv, d, spec, "k_norm")
    if rope:
        k = rotate(g, k, d)
    v = heads(g, project(g, "x", layout, "v"), Hkv, d, spec, None)
    g.nodes.append(helper.make_node("Identity", [k], ["past_key"]))
    g.nodes.append(helper.make_node("Identity", [v], ["past_value"]))
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "L", E])]
    if rope:
        inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["L", d]) for n in ("cos", "sin")]
    return g, inputs, [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["B", Hkv, "L", d]) for n in ("past_key", "past_value")]


def memory_graph(spec):
    E, H, d, layout = spec["E"], spec["H"], spec["d"], spec["layout"]
    g = Graph()
    g.nodes.append(helper.make_node("Identity", [heads(g, project(g, "x", layout, "k"), H, d, spec, None)], ["mem_key"]))
    g.nodes.append(helper.make_node("Identity", [heads(g, project(g, "x", layout, "v"), H, d, spec, None)], ["mem_value"]))
    return g, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "M", E])], \
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["B", H, "M", d]) for n in ("mem_key", "mem_value")]


def mha_step_graph(spec):
    E, H, d, layout = spec["E"], spec["H"], spec["d"], spec["layout"]
    g = Graph()
    q = project(g, "x", layout, "q")
    z = g.op("MultiHeadAttention", [q, "mem_key", "mem_value"], domain="com.microsoft", num_heads=H)
    g.nodes.append(helper.make_node("Identity", [out_proj(g, z, layout)], ["y"]))
    inputs = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["B", "L", E])]
    inputs += [helper.make_tensor_value_info(n, TensorProto.FLOAT, ["B", H, "M", d]) for n in ("mem_key", "mem_value")]
    return g, inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["B", "L", E])]


MODEL_GRAPHS = {
    "gqa-prefill": lambda spec: gqa_graph(spec, past=False),
    "gqa-step": lambda spec: gqa_graph(spec, past=True),
    "basic-prefill": basic_prefill_graph,
    "kv": kv_graph,
    "memory": memory_graph,
    "mha-step": mha_step_graph,
}


def build_model_graph(kind, key, spec):
    g, inputs, outputs = MODEL_GRAPHS[kind](spec)
    graph = helper.make_graph(g.nodes, f"{kind}_{key}", inputs, outputs,
                              initializer=model_initializers(spec["layout"]) + g.consts)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET),
                                                    helper.make_opsetid("com.microsoft", 1)],
                              producer_name="mha-wasm bench/make_onnx.py")
    model.ir_version = 8
    check(model, full=kind in ("basic-prefill", "kv", "memory"))
    return model


def write_model_graphs(outdir, spec_file):
    import json
    with open(spec_file) as f:
        specs = json.load(f)
    for key, spec in specs.items():
        for kind in spec["graphs"]:
            path = os.path.join(outdir, f"{kind}-{key}.onnx")
            tmp = path + ".tmp"
            with open(tmp, "wb") as f:
                f.write(build_model_graph(kind, key, spec).SerializeToString())
            os.replace(tmp, path)
    print(f"make_onnx.py: wrote the model graphs of {' '.join(specs)} into {outdir}")


def main(argv):
    if len(argv) == 4 and argv[2] == "--models":
        os.makedirs(argv[1], exist_ok=True)
        write_model_graphs(argv[1], argv[3])
        return
    if len(argv) < 3:
        sys.exit(f"usage: {argv[0]} OUTDIR EXH [EXH ...]   (e.g. 512x8)\n       {argv[0]} OUTDIR --models SPEC.json")
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
