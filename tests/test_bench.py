"""The benchmark harness (vitlib.bench): it times both models and reports what it measured."""

import math
import re

import pytest

import vitlib
from vitlib import bench
from vitlib.__main__ import main
from vitlib.bench import BenchRow, format_table, run_bench


def test_run_bench_reports_both_passes_of_a_tiny_row():
    tiny = dict(img_size=32, num_classes=10, hidden_size=32, num_layers=1, num_heads=2, mlp_size=64)
    row = BenchRow("tiny", lambda: vitlib.create_model("ViT-Ti/8", **tiny),
                   lambda: vitlib.create_model("ViT-Ti/8", **tiny), img_size=32)
    results = run_bench([row], batch_size=2, repeats=3, warmup=1)
    assert [r["mode"] for r in results] == ["forward", "fwd+bwd"]
    for r in results:
        assert all(math.isfinite(r[k]) and r[k] > 0 for k in ("vitlib", "timm", "ratio"))
    table = format_table(results).splitlines()
    assert len(table) == 4 and table[2].startswith("| tiny | forward | cpu | 2 |")


def test_run_bench_flips_the_order_every_pair(monkeypatch):
    tiny = dict(img_size=32, num_classes=10, hidden_size=32, num_layers=1, num_heads=2, mlp_size=64)
    ours, ref = (vitlib.create_model("ViT-Ti/8", **tiny) for _ in range(2))
    calls = []
    monkeypatch.setattr(bench, "_time_once", lambda m, x, backward: calls.append(m) or 0.01)
    run_bench([BenchRow("tiny", lambda: ours, lambda: ref, img_size=32)], batch_size=2, repeats=4, warmup=0)
    order = ["vitlib" if m is ours else "timm" for m in calls]
    assert order == ["vitlib", "timm", "timm", "vitlib"] * 2 * 2  # 4 repeats, forward then fwd+bwd


def test_bench_cli_rejects_unknown_rows(capsys):
    with pytest.raises(SystemExit) as e:
        main(["bench", "--models", "ViT-X/99"])
    assert e.value.code == 2 and re.search("unknown model.*ViT-Ti/16", capsys.readouterr().err)
