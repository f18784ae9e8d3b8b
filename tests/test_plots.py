"""vitlib.plots: the teaching figures, learning curves, fine-tuning charts, and for Section 4.5 Fig. 6, Fig. 7
and the attention explorer (built and driven programmatically, as a click or a slider move in JupyterLab would
drive it)."""

import numpy as np
import pytest
import torch
from plotly.callbacks import Points

from vitlib.analysis import grid_distances, query_attention
from vitlib.patches import to_uint8
from vitlib.plots import (
    attention_explorer,
    heatmap_row_figure,
    image_row_figure,
    learning_curves,
    patch_grid_figure,
    plot_attention_distance,
    plot_fig6,
    plot_fig7,
    pos_embed_figure,
    rollout_overlay,
    transfer_figure,
)


def random_attention(L=2, B=3, k=2, g=4, cls=True):
    T = g * g + int(cls)
    return list(torch.rand(L, B, k, T, T).softmax(-1))


def test_teaching_figures():
    fig = patch_grid_figure(to_uint8(torch.zeros(3, 32, 48)), 16)
    assert len(fig.layout.shapes) == (48 // 16 + 1) + (32 // 16 + 1)  # every grid line
    assert "N = HW / P^2 = 6" in fig.layout.title.text
    fig = heatmap_row_figure({"a": np.ones((2, 2)), "b": -3 * np.ones((3, 3))})
    assert [t.zmax for t in fig.data] == [3.0, 3.0] and [t.zmin for t in fig.data] == [-3.0, -3.0]
    fig = image_row_figure({"one": to_uint8(torch.zeros(3, 8, 8)), "two": to_uint8(torch.ones(3, 8, 8))})
    assert len(fig.data) == 2 and [a.text for a in fig.layout.annotations] == ["one", "two"]


def test_learning_curves_one_colour_per_run():
    h = {"train": [dict(step=1, loss=2.0, accuracy=0.1), dict(step=2, loss=1.5, accuracy=0.3)],
         "val": [dict(step=2, loss=1.7, accuracy=0.2)]}
    fig = learning_curves({"a": h, "b": h})
    assert len(fig.data) == 2 * 2 * 2  # runs x (loss, accuracy) x (train, val)
    assert fig.data[0].line.color != fig.data[4].line.color and list(fig.data[1].y) == [1.7]


def _point(**where):
    return dict(where, mean=0.5, lo=0.4, hi=0.7, seeds=3)


def test_finetune_figures():
    fig = pos_embed_figure({"before": torch.randn(4, 4, 8), "after": torch.randn(6, 6, 8)}, channels=(0, 3))
    assert len(fig.data) == 4 and np.asarray(fig.data[3].z).shape == (6, 6)
    summary = {"finetune": {"a": {"pre-trained": [_point(n_train=10), _point(n_train=100)],
                                  "scratch": [_point(n_train=10)]}},
               "fewshot": {"a": {"pre-trained": [_point(shots=1), _point(shots=5)], "random": [_point(shots=1)]}},
               "ablation": {"a/n100": {"pre-trained": [_point(dataset="a", size=100, resolution=32),
                                                       _point(dataset="a", size=100, resolution=48)]}}}
    fig = transfer_figure(summary)
    assert [t.name for t in fig.data] == ["fine-tuned: pre-trained", "fine-tuned: scratch", "few-shot a: pre-trained",
                                          "few-shot a: random", "fine-tuned: pre-trained"]
    assert list(fig.data[0].x) == [10, 100] and list(fig.data[4].x) == ["32 px", "48 px"]
    assert list(fig.data[0].error_y.array) == pytest.approx([0.2, 0.2])  # hi - mean
    assert list(fig.data[0].error_y.arrayminus) == pytest.approx([0.1, 0.1])  # mean - lo
    assert [t.showlegend for t in fig.data] == [True, True, True, True, False]  # one legend entry per name
    empty = transfer_figure({"finetune": {}, "fewshot": {}, "ablation": {}})  # a study not run yet: said so
    assert not empty.data and "not yet run" in " ".join(a.text for a in empty.layout.annotations)
    partial = transfer_figure(summary, datasets=("a", "b"))  # the study's datasets: b has no rows yet
    assert [a.text for a in partial.layout.annotations][:2] == ["fine-tuned on a", "fine-tuned on b: not yet run"]
    summary["long"] = {"a/n10": dict(dataset="a", size=10, factor=4, scratch_long=_point(), scratch=None,
                                     pre_trained=None)}  # the convergence check: one marker at its size
    check = [t for t in transfer_figure(summary).data if t.name == "scratch, 4x the budget"]
    assert len(check) == 1 and list(check[0].x) == [10] and check[0].mode == "markers"


def test_rollout_overlay_keeps_attended_patch_and_darkens_the_rest():
    img = torch.ones(3, 8, 8)  # white
    m = torch.zeros(2, 2)
    m[0, 1] = 0.3  # only the top-right patch
    out = rollout_overlay(img, m)
    assert out[1, 6].tolist() == [255, 255, 255] and out[6, 1].tolist() == [0, 0, 0]
    assert (rollout_overlay(img, torch.full((2, 2), 0.1)) == 255).all()  # a flat map leaves the image as it is


def test_fig7_panels():
    comps = torch.randn(28, 3, 4, 4)
    sim = torch.rand(4, 4, 4, 4) * 2 - 1
    d = torch.rand(3, 2) * 10
    fig = plot_fig7(comps, sim, d, (4, 4), 4)
    assert fig.data[0].type == "image" and np.asarray(fig.data[0].z).shape == (4 * 5 - 1, 7 * 5 - 1, 3)
    heat = np.asarray(fig.data[1].z, dtype=float)
    assert heat.shape == (19, 19) and np.isclose(heat[5 + 2, 5 * 3 + 1], sim[1, 3, 2, 1].item())
    assert [t.name for t in fig.data[2:]] == ["Head 1", "Head 2"]
    assert np.allclose(fig.data[3].y, d[:, 1].numpy())
    fig = plot_fig7(comps, None, d, (4, 4), 4)  # a model without position embedding
    assert len(fig.data) == 1 + 2


def test_fig6_and_distance_comparison():
    imgs = torch.rand(3, 3, 16, 16) * 2 - 1
    fig = plot_fig6(imgs, torch.rand(3, 4, 4), labels=["a", "b", "c"])
    assert len(fig.data) == 6 and all(t.type == "image" for t in fig.data)
    fig = plot_attention_distance({"trained": torch.rand(3, 2), "untrained": torch.rand(3, 2)}, (4, 4), 4)
    assert [t.name for t in fig.data] == ["trained", "untrained"] and len(fig.data[0].y) == 6
    assert fig.layout.shapes[0].y0 == pytest.approx(grid_distances(4, 4).mean().item())  # uniform, in pixels
    # models on different grids and depths, each relative to its own uniform attention: the line at 1
    fig = plot_attention_distance({"L=6": torch.rand(6, 3), "L=12": [[1.0] * 3] * 12}, None, None, relative=True)
    assert fig.layout.shapes[0].y0 == 1 and max(fig.data[1].x) > 12 - 1 and "uniform" in fig.layout.yaxis.title.text


def test_explorer_reacts_to_controls_and_clicks():
    torch.manual_seed(0)
    attn = random_attention()
    imgs = torch.rand(3, 3, 16, 16) * 2 - 1
    box = attention_explorer(imgs, attn, (4, 4), 4)
    fig, c = box.figure, box.controls
    assert np.allclose(fig.data[2].z, query_attention(attn, 4, 0, 0, 0, 2 * 4 + 2).numpy())  # initial: centre
    before = np.array(fig.data[2].z)
    c["layer"].value = 2  # as moving the slider does
    assert not np.allclose(fig.data[2].z, before)
    assert np.allclose(fig.data[2].z, query_attention(attn, 4, 1, 0, 0, 10).numpy())
    c["head"].value = -1
    c["image"].value = 2
    assert np.allclose(fig.data[1].z, query_attention(attn, 4, 1, None, 2, 10).numpy())
    assert np.array_equal(fig.data[0].z, to_uint8(imgs[2], rgb=True))
    # a click on the right panel at (col 3, row 1) picks that patch as the query; the message is the one
    # the browser sends (plotly's FigureWidget dispatches it to the on_click callbacks of the traces)
    fig._handler_js2py_pointsCallback({"new": {"event_type": "plotly_click", "points": {
        "xs": [3], "ys": [1], "point_indexes": [[1, 3]], "trace_indexes": [2]}}})
    assert (c["row"].value, c["col"].value) == (1, 3)
    assert np.allclose(fig.data[2].z, query_attention(attn, 4, 1, None, 2, 1 * 4 + 3).numpy())
    assert fig.layout.shapes[1].x0 == 2.5  # the query square moved
    # a click on the image (pixel coordinates) picks the patch under it
    box.on_click(fig.data[1], Points(point_inds=[0], xs=[1.5], ys=[13.5], trace_name="", trace_index=1), None)
    assert (c["row"].value, c["col"].value) == (3, 0)
    c["cls"].value = True
    assert np.allclose(fig.data[2].z, query_attention(attn, 4, 1, None, 2, None).numpy())
    assert len(fig.layout.shapes) == 0


def test_explorer_without_class_token():
    box = attention_explorer(torch.rand(1, 3, 16, 16), random_attention(B=1, cls=False), (4, 4), 4)
    assert box.controls["cls"].disabled


def test_headline_figures_draw_every_run_and_every_layer():
    """run_curves_figure: two panels per run; locality_figure: one line per ViT run and layer, ResNets left out."""
    import json

    from vitlib.plots import locality_figure, run_curves_figure
    from vitlib.records import FIGURES_DIR
    rows = json.loads((FIGURES_DIR / "scaling_curves_pilot.json").read_text())["results"]["rows"]
    curves = run_curves_figure(rows)
    assert len(curves.data) == 2 * len(rows) and curves.layout.xaxis.type == "log"
    assert [p["10shot"] for p in rows[0]["points"]] == list(curves.data[1].y)
    vits = [r for r in rows if r["points"][0].get("attention_distance") is not None]
    layers = len(vits[0]["points"][0]["attention_distance"])
    assert 0 < len(vits) < len(rows) and len(locality_figure(rows).data) == layers * len(vits)
    lines = locality_figure(rows, uniform=14.4).layout.shapes
    assert len(lines) == 2 and {line.y0 for line in lines} == {14.4}  # one dotted line a panel (two sizes)
