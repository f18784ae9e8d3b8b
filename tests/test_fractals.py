"""FractalDB-style renderer: determinism, subsets, the filling-rate test, cache, learnability."""

import numpy as np
import pytest

from vitlib import fractals


@pytest.fixture(scope="module")
def small():
    return fractals.render_fractaldb(10, 8, 32, seed=0, progress=False)


def test_same_seed_same_bytes_other_seed_differs(small):
    images, labels = small
    again, labels2 = fractals.render_fractaldb(10, 8, 32, seed=0, progress=False)
    assert images.dtype == np.uint8 and images.shape == (80, 3, 32, 32)
    assert images.tobytes() == again.tobytes() and np.array_equal(labels, labels2)
    other, _ = fractals.render_fractaldb(10, 8, 32, seed=1, progress=False)
    assert (other != images).mean() > 0.3 and (other != images).any(axis=(1, 2, 3)).all()  # black background shared
    assert np.array_equal(labels, np.repeat(np.arange(10), 8))


def test_processes_and_subsets_give_the_same_images(small, monkeypatch):
    images, _ = small
    monkeypatch.setattr(fractals, "CHUNK_IMAGES", 16)  # 5 tasks of 2 categories
    parallel, labels = fractals.render_fractaldb(10, 8, 32, seed=0, workers=2, progress=False)
    assert parallel.tobytes() == images.tobytes()
    monkeypatch.setattr(fractals, "BLOCK_IMAGES", 3)  # chains advanced in blocks of 3 images, not 64
    blocked, _ = fractals.render_fractaldb(10, 8, 32, seed=0, progress=False)
    assert blocked.tobytes() == images.tobytes()
    sub, _ = fractals.render_fractaldb(4, 3, 32, seed=0, progress=False)  # fewer classes and instances: a subset
    assert np.array_equal(sub.reshape(4, 3, 3, 32, 32), images.reshape(10, 8, 3, 32, 32)[:4, :3])


def test_test_split_renders_new_instances(small):
    train, _ = small
    test, labels = fractals.render_fractaldb(10, 2, 32, seed=0, split="test", progress=False)
    assert labels.tolist() == np.repeat(np.arange(10), 2).tolist()
    assert not any((t == train).all(axis=(1, 2, 3)).any() for t in test)


def test_filling_rate_rejects_degenerate_systems():
    """Sierpinski's triangle fills the canvas; a system whose maps all squash y to 0 (a segment) does not."""
    sierpinski = np.array([[0.5, 0, 0, 0.5, 0, 0], [0.5, 0, 0, 0.5, 0.5, 0], [0.5, 0, 0, 0.5, 0.25, 0.5]])
    segment = np.array([[0.5, 0, 0, 0.001, 0, 0], [0.5, 0, 0, 0.001, 0.5, 0]])
    fills = []
    for p in (sierpinski, segment):
        rng = np.random.default_rng(0)
        maps = fractals._choose_maps(rng.random((40, 1, 64), np.float32), p[None])
        counts = fractals._splat(fractals._chaos_game(p[None], maps, rng.uniform(-1, 1, (1, 64, 2)), 8), 32)
        fills.append((counts > 0).mean())
    assert fills[0] > 0.3 > 0.15 > fills[1]
    ifs = fractals.sample_ifs(0, 3)
    assert ifs.shape == (4, 6) and 2 <= (np.abs(ifs).sum(1) > 0).sum() <= 4 and np.abs(ifs).max() <= 1


def test_cache_round_trip(tmp_path):
    a = fractals.load_fractaldb(3, 4, 16, seed=0, cache_dir=tmp_path, progress=False)
    folders = list((tmp_path / "fractaldb").iterdir())
    assert len(folders) == 1 and (folders[0] / "options.json").exists()
    b = fractals.load_fractaldb(3, 4, 16, seed=0, cache_dir=tmp_path, progress=False)  # read back
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert a["test_images"].shape == (3, 3, 16, 16)  # test_images_per_class = max(1, 4 // 5)
    fractals.load_fractaldb(3, 4, 16, seed=1, cache_dir=tmp_path, progress=False)
    assert len(list((tmp_path / "fractaldb").iterdir())) == 2  # other options, other folder


def test_a_category_is_learnable(small):
    """Nearest class centroid on raw grey pixels, trained on 8 instances per class, classifies new
    (test-stream) instances far above chance (10%)."""
    def grey(x):
        g = x.astype(np.float64).max(axis=1).reshape(len(x), -1)  # colour is a nuisance: keep the shape
        return g / np.maximum(g.max(axis=1, keepdims=True), 1)

    train, labels = small
    test, test_labels = fractals.render_fractaldb(10, 4, 32, seed=0, split="test", progress=False)
    centroids = np.stack([grey(train)[labels == c].mean(0) for c in range(10)])
    pred = ((grey(test)[:, None] - centroids[None]) ** 2).sum(-1).argmin(1)
    assert (pred == test_labels).mean() >= 0.6


def test_sample_grid_montage():
    grid = fractals.sample_grid(3, 4, 16, gap=2)
    assert grid.shape == (3 * 18 - 2, 4 * 18 - 2, 3) and grid.dtype == np.uint8
    assert grid[16:18].max() == 0 and grid[:16, :16].max() > 0


def test_a_smaller_corpus_is_cut_from_a_larger_cached_one(tmp_path, monkeypatch):
    """Fewer classes, train and test images per class, same seed and options: the bytes of rendering it, read
    from the larger corpus's cache without rendering or writing anything."""
    small = {s: fractals.render_fractaldb(3, n, 16, seed=2, split=s, progress=False) for s, n in (("train", 4),
                                                                                                ("test", 1))}
    fractals.load_fractaldb(4, 6, 16, seed=2, test_images_per_class=2, cache_dir=tmp_path, progress=False)

    def no_render(*args, **kw):
        raise AssertionError("rendered instead of cutting")

    monkeypatch.setattr(fractals, "render_fractaldb", no_render)
    cut = fractals.load_fractaldb(3, 4, 16, seed=2, cache_dir=tmp_path, progress=False)  # test: 4 // 5 -> 1 each
    for s in ("train", "test"):
        assert cut[f"{s}_images"].tobytes() == small[s][0].tobytes()
        assert np.array_equal(cut[f"{s}_labels"], small[s][1])
    assert len(list((tmp_path / "fractaldb").glob("[!.]*"))) == 1
    whole = fractals.load_fractaldb(3, 6, 16, seed=2, test_images_per_class=2, cache_dir=tmp_path, progress=False)
    assert all(a.flags.writeable for a in whole.values()), "a cut that is whole classes is a copy, not a read-only map"
    for other in (dict(seed=3), dict(jitter=0.05), dict(test_images_per_class=3)):  # not in the cached corpus
        with pytest.raises(AssertionError, match="rendered instead"):
            fractals.load_fractaldb(3, 4, 16, **{"seed": 2, **other}, cache_dir=tmp_path, progress=False)


def test_one_process_renders_the_others_wait_and_read_its_cache(tmp_path, monkeypatch):
    """Two loaders of the same corpus at once (as torchrun's ranks on one machine): one renders, the other waits
    for the lock, then reads the cache."""
    import threading
    import time

    render, calls = fractals.render_fractaldb, []

    def slow_render(*args, **kw):
        calls.append(kw["split"])
        time.sleep(0.5)  # long enough for the other loader to reach the lock
        return render(*args, **kw)

    monkeypatch.setattr(fractals, "render_fractaldb", slow_render)
    results = [None, None]

    def load(i):
        results[i] = fractals.load_fractaldb(3, 4, 16, seed=0, cache_dir=tmp_path, progress=False)

    threads = [threading.Thread(target=load, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(calls) == ["test", "train"]  # one render of each split, not two
    assert all(np.array_equal(results[0][k], results[1][k]) for k in results[0])
