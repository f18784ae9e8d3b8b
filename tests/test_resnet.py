"""BiT ResNet (vitlib.resnet): parity with timm's ResNetV2, pinned parameter counts, GN + WS properties."""

from functools import partial

import pytest
import timm
import torch
import torch.nn.functional as F
from helpers import randomise
from timm.layers import StdConv2d as TimmStdConv2d
from timm.layers.padding import pad_same as timm_pad_same
from timm.models.resnetv2 import ResNetV2

import vitlib
from vitlib.flops import count_parameters
from vitlib.interop import from_timm_resnet, load_into
from vitlib.resnet import ResNet, ResNetConfig, StdConv2d, resnet_config, same_pad, standardize


def tiny(**kw):
    # A narrow R26 for 32x32 inputs: the CPU-sized baseline of the scaling experiments.
    kw = dict(img_size=32, num_classes=10, stem="cifar", base_width=32) | kw
    return vitlib.create_model("BiT-R26x1", **kw)


@pytest.mark.parametrize("name, timm_name", [("BiT-R50x1", "resnetv2_50x1_bit"), ("BiT-R50x3", "resnetv2_50x3_bit"),
                                             ("BiT-R101x1", "resnetv2_101x1_bit"),
                                             ("BiT-R152x2", "resnetv2_152x2_bit")])
def test_parameter_count_equals_timm(name, timm_name):
    with torch.device("meta"):  # shapes only
        ours, ref = vitlib.create_model(name), timm.create_model(timm_name, pretrained=False)
    assert count_parameters(ours) == count_parameters(ref)
    if name == "BiT-R50x1":
        assert count_parameters(ours) == 25_549_352


def test_timm_parity_bit_r50x1():
    # Same weights as timm's resnetv2_50x1_bit -> same logits. 96 px keeps it fast; every layer is exercised.
    ref = randomise(timm.create_model("resnetv2_50x1_bit", pretrained=False))
    model = load_into(vitlib.create_model("BiT-R50x1"), from_timm_resnet(ref.state_dict())).eval()
    x = torch.randn(1, 3, 96, 96)
    with torch.no_grad():
        y, y_ref = model(x), ref(x)
    assert y_ref.abs().max() > 0.1  # not a trivially zero output
    assert (y - y_ref).abs().max().item() <= 1e-4
    assert count_parameters(model) == count_parameters(ref) == 25_549_352


def test_timm_parity_bit_r26_any_size():
    # Another depth (timm's ResNetV2 with BiT's layout and R26 stages), a non-square input.
    # timm has no registered BiT-R26: build its ResNetV2 with the settings of its resnetv2_*_bit models.
    ref = randomise(ResNetV2(layers=[2, 2, 2, 2], stem_type="fixed", conv_layer=partial(TimmStdConv2d, eps=1e-8)))
    model = load_into(vitlib.create_model("BiT-R26x1"), from_timm_resnet(ref.state_dict())).eval()
    x = torch.randn(2, 3, 64, 48)  # not square, not a multiple of 32
    with torch.no_grad():
        assert torch.allclose(model(x), ref(x), atol=1e-4)


def test_weight_standardization_zero_mean_unit_variance():
    w = torch.randn(8, 4, 3, 3) * 3 + 1
    ws = standardize(w)
    assert torch.allclose(ws.mean(dim=(1, 2, 3)), torch.zeros(8), atol=1e-6)
    assert torch.allclose(ws.var(dim=(1, 2, 3), correction=0), torch.ones(8), atol=1e-5)


def test_std_conv_is_conv_with_standardized_kernel_and_scale_invariant():
    conv = StdConv2d(4, 8, 3)
    x = torch.randn(2, 4, 9, 9)
    assert torch.allclose(conv(x), F.conv2d(x, standardize(conv.weight), padding=1), atol=1e-5)
    y = conv(x)
    with torch.no_grad():
        conv.weight.mul_(7.0).add_(0.3)  # WS removes each filter's scale and offset
    assert torch.allclose(conv(x), y, atol=1e-4)


def test_ws_eps_close_to_official():
    # The official JAX code divides by (std + 1e-5), we by sqrt(var + 1e-8) as timm: relative gap ~ 1e-5 / std.
    w = torch.randn(64, 32, 3, 3) * 0.05
    official = (w - w.mean(dim=(1, 2, 3), keepdim=True)) / (w.std(dim=(1, 2, 3), keepdim=True, correction=0) + 1e-5)
    assert (standardize(w) - official).abs().max() < 1e-3
    assert (standardize(w) - official).abs().max() > 0  # they are not the same function


def test_group_norm_32_groups_and_no_batch_norm():
    with torch.device("meta"):  # structure only
        m = vitlib.create_model("BiT-R50x1")
    norms = [x for x in m.modules() if isinstance(x, torch.nn.GroupNorm)]
    assert len(norms) == 3 * 16 + 1  # three per unit, one before the head
    assert all(g.num_groups == 32 for g in norms)
    assert not any(isinstance(x, torch.nn.modules.batchnorm._BatchNorm) for x in m.modules())
    convs = [x for x in m.modules() if isinstance(x, torch.nn.Conv2d)]
    assert convs and all(isinstance(c, StdConv2d) for c in convs)


def test_same_padding_matches_tensorflow_rule():
    # TF "SAME": output = ceil(n / s), extra pixel after; timm's pad_same implements the same rule.
    for n in (7, 8, 31, 32):
        x = torch.randn(1, 1, n, n + 1)
        for k, s in ((3, 2), (7, 2), (3, 1), (1, 2)):
            assert torch.equal(same_pad(x, k, s), timm_pad_same(x, (k, k), (s, s)))
    assert same_pad(torch.zeros(1, 1, 8, 8), 3, 2).shape[-2:] == (9, 9)  # (0, 1): the extra row goes at the end


@pytest.mark.parametrize("name, depths, width", [("BiT-R50x1", (3, 4, 6, 3), 1), ("BiT-R152x4", (3, 8, 36, 3), 4),
                                                 ("bit_r101x3", (3, 4, 23, 3), 3), ("BiT-R26x2", (2, 2, 2, 2), 2)])
def test_names(name, depths, width):
    cfg = resnet_config(name)
    assert (cfg.depths, cfg.width) == (depths, width)
    assert cfg.depth == int(name.lower().split("r")[-1].split("x")[0])  # 3 * sum(depths) + 2 = the name's depth


def test_bad_names_and_fields():
    with pytest.raises(ValueError, match="R50"):
        resnet_config("BiT-R34x1")  # not a bottleneck ResNet depth
    with pytest.raises(ValueError, match="BiT-R50x1"):
        vitlib.create_model("BiT-XL")  # unknown: the error lists ViT, hybrid and BiT names
    with pytest.raises(TypeError, match="base_width"):
        resnet_config("BiT-R50x1", widht=2)
    with pytest.raises(ValueError, match="GroupNorm"):
        ResNetConfig(base_width=48)
    with pytest.raises(ValueError, match="stem"):
        ResNetConfig(stem="deep")


def test_feature_map_stride_and_channels():
    m = vitlib.create_model("BiT-R50x1", num_classes=0)
    f = m.forward_features(torch.randn(1, 3, 64, 96))
    assert f.shape == (1, 2048, 2, 3) and m.stride == 32  # 1/32 of the input: stem /4, stages 2-4 /2 each
    t = tiny()
    assert t.forward_features(torch.randn(1, 3, 32, 32)).shape == (1, 1024, 4, 4)  # cifar stem: /8 after 4 stages
    assert t.stride == 8


def test_tiny_forward_backward_and_zero_head():
    m = tiny()
    x = torch.randn(4, 3, 32, 32)
    assert torch.all(m(x) == 0)  # zero-initialised head, as BiT and the paper fine-tune
    torch.nn.init.normal_(m.head.weight, std=0.02)
    y = m(x)
    assert y.shape == (4, 10) and torch.isfinite(y).all()
    y.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in m.parameters())
    assert m.stem.conv.weight.grad.abs().sum() > 0


def test_preact_unit_is_identity_plus_branch():
    # ResNet v2: the shortcut of a unit without projection is the input itself, untouched by GN or ReLU.
    unit = tiny().stages[0][1]
    assert unit.downsample is None
    x = torch.randn(2, 128, 8, 8)
    a = F.relu(unit.norm1(x))
    branch = unit.conv3(F.relu(unit.norm3(unit.conv2(F.relu(unit.norm2(unit.conv1(a)))))))
    assert torch.allclose(unit(x), x + branch, atol=1e-5)


def test_bad_input_errors():
    m = tiny()
    with pytest.raises(ValueError, match="input channels"):
        m(torch.randn(1, 1, 32, 32))
    with pytest.raises(ValueError, match="4D"):
        m(torch.randn(3, 32, 32))


def test_unknown_timm_resnet_key():
    with pytest.raises(ValueError, match="ResNetV2"):
        from_timm_resnet({"blocks.0.attn.qkv.weight": torch.zeros(1)})


def test_config_rebuilds_model():
    m = tiny()
    cfg = ResNetConfig(**{k: getattr(m.cfg, k) for k in m.cfg.__dataclass_fields__})
    m2 = load_into(ResNet(cfg), m.state_dict()).eval()
    x = torch.randn(1, 3, 32, 32)
    assert torch.equal(m.eval()(x), m2(x))
