"""FractalDB-style pre-training images: Iterated Function System fractals rendered procedurally.

The paper pre-trains on JFT-300M (Section 4.1), which is private. vitlib stands in for it with a
procedural corpus in the style of FractalDB (Kataoka et al., ACCV 2020; Nakashima et al., AAAI 2022
pre-train ViTs on it): unlimited in size, as many classes as asked, deterministic by seed, and
rendered offline in minutes.

- A category is one IFS: m affine maps w_j(x) = A_j x + b_j (m = 2..4, the six parameters of each
  map uniform in [-1, 1]), picked with probability p_j proportional to |det A_j|. A candidate is
  kept only when its attractor fills at least `fill_threshold` of a fixed 32 x 32 check canvas
  (FractalDB's filling-rate test: it rejects points, lines and diverging systems).
- An instance is a variation of its category: Gaussian jitter on the IFS parameters, a random
  horizontal flip and a random colour (hue, saturation) on a black background.
- Rendering is the chaos game, vectorised: K chains per image advance together for T steps
  (the first `burn_in` steps are dropped), over a batch of images at once; the points are fitted
  to the canvas (aspect kept) and splatted as hit counts, shaded by log density.
- Every image draws from its own random stream, `numpy.random.default_rng([seed, 1 + split, c, i])`
  (category c, instance i; split 0 train, 1 test), and each category from `[seed, 0, c]`: the
  bytes do not depend on the number of processes, and a smaller corpus (fewer classes or fewer
  images per class) is a subset of a larger one with the same seed, so `load_fractaldb` cuts it from a
  larger cached corpus when there is one. Test images come from the test stream, so they are new
  instances of the same categories.
- The cache is written by one process at a time (a file lock per corpus): the ranks of a torchrun job
  on one machine render a corpus once, not once each with all the machine's CPUs.

Deviations from FractalDB: 2-4 maps instead of 2-8, additive parameter jitter instead of
FractalDB's per-parameter weights, and log-density shading; none of this is in the ViT paper,
which does not use fractals at all.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import sys
from pathlib import Path

import filelock
import numpy as np
from tqdm.auto import tqdm

from .patches import mosaic
from .utils import atomic_write

__all__ = ["sample_ifs", "render_images", "render_fractaldb", "load_fractaldb", "sample_grid", "default_cache_dir"]

CHECK_SIZE = 32  # side of the canvas on which the filling rate of a category is measured
CHECK_CHAINS, CHECK_STEPS = 64, 40  # 64 * (40 - 8) = 2048 points for the filling-rate check
CANDIDATES = 8  # IFS candidates tried per round of the category search
MAX_ROUNDS = 500
CHUNK_IMAGES = 2048  # images per multiprocessing task
BLOCK_IMAGES = 64  # images whose chains advance together: temporaries small enough to stay in cache
FORMAT_VERSION = 1  # bump when the rendering changes, so that old caches are not reused


def default_cache_dir() -> Path:
    """$VITLIB_CACHE, else ~/.cache/vitlib."""
    return Path(os.environ.get("VITLIB_CACHE") or Path.home() / ".cache" / "vitlib")


def _chaos_game(params: np.ndarray, maps: np.ndarray, x0: np.ndarray, burn_in: int) -> np.ndarray:
    """Run K chains per image: params (B, m, 6) = (a, b, c, d, e, f) of the maps x' = a x + b y + e,
    y' = c x + d y + f; maps (T, B, K) the index of the map each chain applies at each step; x0 (B, K, 2) the
    start points. Returns the points visited after burn-in, (2, T - burn_in, B, K) float32, x then y (inf/nan
    where a chain diverged)."""
    T, B, K = maps.shape
    m = params.shape[1]
    planes = np.ascontiguousarray(params.reshape(B * m, 6).astype(np.float32).T)  # (6, B m): one row per parameter
    index = (np.arange(B, dtype=np.intp) * m)[None, :, None] + maps  # (T, B, K) row of (image, map) in B m
    x, y = x0[..., 0].astype(np.float32), x0[..., 1].astype(np.float32)  # (B, K)
    out = np.empty((2, T - burn_in, B, K), np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(T):
            p = planes[:, index[t]]  # (6, B, K) the parameters of the map each chain applies
            x, y = p[0] * x + p[1] * y + p[4], p[2] * x + p[3] * y + p[5]
            if t >= burn_in:
                out[0, t - burn_in], out[1, t - burn_in] = x, y
    return out


def _splat(points: np.ndarray, size: int, margin: float = 0.04, tail: float = 0.002) -> np.ndarray:
    """Hit counts (B, size, size) of points (2, T, B, K). Each image's points are fitted to the canvas, aspect
    ratio kept, inside a box from the `tail` and 1 - `tail` quantiles of a sample of 16 steps (so that a few
    stragglers do not shrink the fractal to a dot); points outside the box are dropped. Images whose points
    diverged get an empty canvas."""
    _, T, B, K = points.shape
    first = points[:, ::max(1, T // 16)].transpose(2, 1, 3, 0).reshape(B, -1, 2)  # (B, ~16 K, 2) sample for the box
    ok = np.isfinite(first).all(axis=(1, 2)) & (np.abs(first).max(axis=(1, 2), initial=0) < 1e6)
    first = np.where(ok[:, None, None], first, 0.0)
    lo, hi = np.quantile(first, [tail, 1 - tail], axis=1)  # (B, 2) each
    extent = (hi - lo).max(axis=1)  # (B,)
    ok &= extent > 1e-6
    scale = (size * (1 - 2 * margin) / np.maximum(extent, 1e-6)).astype(np.float32)[:, None]  # (B, 1)
    ox = (size / 2 - (lo[:, 0] + hi[:, 0]) / 2 * scale[:, 0]).astype(np.float32)[:, None]  # (B, 1)
    oy = (size / 2 + (lo[:, 1] + hi[:, 1]) / 2 * scale[:, 0]).astype(np.float32)[:, None]  # y axis points up
    with np.errstate(all="ignore"):  # diverged chains are inf/nan: they land outside
        fx = points[0] * scale + ox  # (T, B, K) float32, canvas coordinates
        fy = oy - points[1] * scale
        inside = (fx >= 0) & (fx < size) & (fy >= 0) & (fy < size) & ok[:, None]
        row = (np.arange(B, dtype=np.int32) * size)[:, None]  # (B, 1)
        pixel = (row + fy.astype(np.int32)) * size + fx.astype(np.int32)  # truncation = floor where inside
    pixel = np.where(inside, pixel, B * size * size)  # outside: a discarded extra bin
    return np.bincount(pixel.ravel(), minlength=B * size * size + 1)[:-1].reshape(B, size, size)


def _choose_maps(u: np.ndarray, params: np.ndarray) -> np.ndarray:
    """Map indices (T, B, K) int64 from uniforms u (T, B, K): map j with probability p_j proportional to
    |det A_j| of each image's params (B, m, 6); maps with all-zero parameters (padding) are never chosen."""
    det = np.abs(params[..., 0] * params[..., 3] - params[..., 1] * params[..., 2])  # (B, m)
    cdf = np.cumsum(det, axis=-1)
    cdf = (cdf / np.maximum(cdf[:, -1:], 1e-12)).astype(np.float32)
    maps = np.zeros(u.shape, np.int8)
    for j in range(cdf.shape[1] - 1):
        maps += u >= cdf[None, :, j, None]  # (T, B, K)
    return maps


def sample_ifs(seed: int, category: int, fill_threshold: float = 0.15, max_maps: int = 4) -> np.ndarray:
    """The IFS of one category: parameters (max_maps, 6), unused maps all zero (probability 0).

    Candidates with 2..max_maps maps, parameters uniform in [-1, 1], are drawn from the category's
    own stream until one fills at least `fill_threshold` of a 32 x 32 canvas (FractalDB's filling rate).
    """
    rng = np.random.default_rng([seed, 0, category])
    for _ in range(MAX_ROUNDS):
        params = rng.uniform(-1, 1, size=(CANDIDATES, max_maps, 6))
        m = rng.integers(2, max_maps + 1, size=CANDIDATES)
        params[np.arange(max_maps)[None, :] >= m[:, None]] = 0.0
        x0 = rng.uniform(-1, 1, size=(CANDIDATES, CHECK_CHAINS, 2))
        maps = _choose_maps(rng.random((CHECK_STEPS, CANDIDATES, CHECK_CHAINS), np.float32), params)
        counts = _splat(_chaos_game(params, maps, x0, burn_in=8), CHECK_SIZE)
        fill = (counts > 0).mean(axis=(1, 2))
        good = np.flatnonzero(fill >= fill_threshold)
        if good.size:
            return params[good[0]]
    raise RuntimeError(f"no IFS with filling rate >= {fill_threshold} found for category {category} "
                       f"after {MAX_ROUNDS * CANDIDATES} candidates; lower fill_threshold")


def _hsv_to_rgb(h: np.ndarray, s: np.ndarray) -> np.ndarray:
    """RGB in [0, 1] (B, 3) of hues h and saturations s in [0, 1] at full value."""
    k = (np.array([5.0, 3.0, 1.0])[None, :] + h[:, None] * 6) % 6
    return 1 - s[:, None] * np.clip(np.minimum(k, 4 - k), 0, 1)


def render_images(category_params: np.ndarray, keys: np.ndarray, size: int, seed: int, *, num_points: int | None = None,
                  jitter: float = 0.04, chains: int = 64, burn_in: int = 8) -> np.ndarray:
    """Render instances: category_params (B, m, 6) the IFS of each image's category, keys (B, 3) the
    (split, category, instance) of each image. Returns uint8 images (B, 3, size, size).

    num_points per image defaults to 4 * size^2 (4096 at 32 x 32), rounded up to whole chains;
    `chains` chains per image run `burn_in` + num_points / chains steps.
    """
    B = len(keys)
    num_points = num_points or 4 * size * size
    steps = burn_in + max(8, -(-num_points // chains))
    params = np.empty_like(category_params)
    x0, u = np.empty((B, chains, 2), np.float32), np.empty((steps, B, chains), np.float32)
    hue, sat, flip = np.empty(B), np.empty(B), np.empty(B, bool)
    for b, (split, c, i) in enumerate(keys):
        rng = np.random.default_rng([seed, 1 + int(split), int(c), int(i)])
        base = category_params[b]
        params[b] = base + (base != 0) * rng.normal(0, jitter, size=base.shape)  # padding maps stay 0
        x0[b] = rng.random((chains, 2), np.float32) * 2 - 1
        u[:, b] = rng.random((steps, chains), np.float32)
        hue[b], sat[b], flip[b] = rng.random(), rng.uniform(0.4, 1.0), rng.random() < 0.5
    counts = np.empty((B, size, size), np.int64)
    for a in range(0, B, BLOCK_IMAGES):  # images are independent: blocks keep the temporaries in cache
        s = slice(a, a + BLOCK_IMAGES)
        counts[s] = _splat(_chaos_game(params[s], _choose_maps(u[:, s], params[s]), x0[s], burn_in), size)
    bad = counts.sum(axis=(1, 2)) == 0  # the jitter made this instance diverge: render the category itself
    if bad.any():
        p = category_params[bad]
        counts[bad] = _splat(_chaos_game(p, _choose_maps(u[:, bad], p), x0[bad], burn_in), size)
    density = np.log1p(counts) / np.log1p(np.maximum(counts.max(axis=(1, 2), keepdims=True), 1))  # (B, S, S)
    rgb = _hsv_to_rgb(hue, sat)  # (B, 3)
    images = np.rint(255 * density[:, None] * rgb[:, :, None, None]).astype(np.uint8)  # (B, 3, S, S)
    images[flip] = images[flip, :, :, ::-1]
    return images


def _render_chunk(args: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Worker: the categories in `categories`, `per_class` instances each, of one split."""
    categories, per_class, split, size, seed, fill_threshold, kw = args
    ifs = np.stack([sample_ifs(seed, c, fill_threshold) for c in categories])  # (n_c, m, 6)
    keys = np.array([(split, c, i) for c in categories for i in range(per_class)], dtype=np.int64).reshape(-1, 3)
    images = render_images(np.repeat(ifs, per_class, axis=0), keys, size, seed, **kw)
    return images, keys[:, 1].copy()


def render_fractaldb(num_classes: int, images_per_class: int, size: int = 32, *, seed: int = 0, split: str = "train",
                     fill_threshold: float = 0.15, workers: int | None = None, progress: bool = True,
                     **render_kw) -> tuple[np.ndarray, np.ndarray]:
    """Render a FractalDB-style set: images uint8 (num_classes * images_per_class, 3, size, size) in
    category-major order, and labels int64. Same arguments -> identical bytes, whatever `workers`.

    `split` "train" or "test" picks the instance stream. `workers` processes (default: all CPUs when the
    set has more than 20k images, else 1). `render_kw` goes to `render_images` (num_points, jitter, ...).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    s = 0 if split == "train" else 1
    total = num_classes * images_per_class
    if workers is None:
        workers = (os.cpu_count() or 1) if total > 20_000 else 1
    per_chunk = max(1, CHUNK_IMAGES // max(images_per_class, 1))  # whole categories, about 2k images per task
    chunks = [(list(range(a, min(a + per_chunk, num_classes))), images_per_class, s, size, seed, fill_threshold,
               render_kw) for a in range(0, num_classes, per_chunk)]
    images = np.empty((total, 3, size, size), np.uint8)
    labels = np.empty(total, np.int64)
    bar = tqdm(total=total, desc=f"rendering FractalDB {split} ({num_classes} x {images_per_class})",
               unit="img", disable=not progress)
    pool = concurrent.futures.ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        results = pool.map(_render_chunk, chunks) if pool else map(_render_chunk, chunks)
        start = 0
        for imgs, labs in results:
            images[start:start + len(imgs)], labels[start:start + len(labs)] = imgs, labs
            start += len(imgs)
            bar.update(len(imgs))
    finally:
        bar.close()
        if pool:
            pool.shutdown()
    return images, labels


SIZES = ("num_classes", "images_per_class", "test_images_per_class")  # the options a corpus can be cut along
NAMES = ("train_images", "train_labels", "test_images", "test_labels")  # the cache's files, NAME.npy


def _read_cache(folder: Path) -> dict[str, np.ndarray] | None:
    """The arrays of a cached corpus, or None when `folder` does not hold one."""
    if not _complete(folder):
        return None
    return {n: np.load(folder / f"{n}.npy") for n in NAMES}


def _complete(folder: Path) -> bool:
    return all((folder / f"{n}.npy").exists() for n in NAMES)


def _larger_corpus(root: Path, opts: dict) -> tuple[Path, dict] | None:
    """The smallest cached corpus under `root` that contains the corpus of `opts`: the same options except as many
    or more classes, train and test images per class; (folder, its options), or None."""
    found = []
    for path in root.glob("[!.]*/options.json"):  # not the hidden folders of writes in progress
        other = json.loads(path.read_text())
        same = set(other) == set(opts) and all(other[k] == v for k, v in opts.items() if k not in SIZES)
        if same and all(other[k] >= opts[k] for k in SIZES) and _complete(path.parent):
            found.append((other["num_classes"] * (other["images_per_class"] + other["test_images_per_class"]),
                          path.parent, other))
    return min(found, key=lambda f: f[0])[1:] if found else None


def _cut(folder: Path, big: dict, opts: dict) -> dict[str, np.ndarray]:
    """The first num_classes categories and the first images of each of a larger cached corpus (category-major):
    the bytes rendering `opts` would give, since every image and category draws from its own stream."""
    out = {}
    for split, per_class in (("train", "images_per_class"), ("test", "test_images_per_class")):
        images = np.load(folder / f"{split}_images.npy", mmap_mode="r")  # reads only the pages cut
        labels = np.load(folder / f"{split}_labels.npy")
        grid = (big["num_classes"], big[per_class])
        out[f"{split}_images"] = np.array(  # a copy: a memory map (read-only) would stay one where the cut is whole
            images.reshape(*grid, *images.shape[1:])[:opts["num_classes"], :opts[per_class]].reshape(
                -1, *images.shape[1:]), order="C")
        out[f"{split}_labels"] = labels.reshape(grid)[:opts["num_classes"], :opts[per_class]].reshape(-1).copy()
    return out


def _cached(folder: Path, opts: dict) -> dict[str, np.ndarray] | None:
    """The corpus of `opts` from the cache: its own folder, else cut from a larger cached corpus; None if neither."""
    own = _read_cache(folder)
    if own is not None:
        return own
    larger = _larger_corpus(folder.parent, opts)
    return _cut(*larger, opts) if larger else None


def load_fractaldb(num_classes: int, images_per_class: int, size: int = 32, *, seed: int = 0,
                   test_images_per_class: int | None = None, cache_dir: str | Path | None = None,
                   fill_threshold: float = 0.15, workers: int | None = None, progress: bool = True,
                   **render_kw) -> dict[str, np.ndarray]:
    """Train and test arrays of a FractalDB-style set, rendered once and cached on disk as uint8 .npy
    under `cache_dir` (default $VITLIB_CACHE or ~/.cache/vitlib) in a folder keyed by the options.

    A corpus with fewer classes or images per class than a cached one of the same seed and options is cut from
    it (the same bytes as rendering it) instead of rendered. One process renders at a time per cache folder
    (a file lock): under torchrun the other ranks of the machine wait for its cache, then read it.

    Returns {"train_images", "train_labels", "test_images", "test_labels"}; test_images_per_class
    defaults to max(1, images_per_class // 5).
    """
    test_per_class = test_images_per_class or max(1, images_per_class // 5)
    opts = dict(version=FORMAT_VERSION, num_classes=num_classes, images_per_class=images_per_class, size=size,
                seed=seed, test_images_per_class=test_per_class, fill_threshold=fill_threshold,
                **{k: render_kw[k] for k in sorted(render_kw)})
    key = hashlib.sha1(json.dumps(opts, sort_keys=True).encode()).hexdigest()[:16]
    folder = Path(cache_dir or default_cache_dir()) / "fractaldb" / f"{num_classes}x{images_per_class}_{size}px_{key}"
    arrays = _cached(folder, opts)
    if arrays is not None:
        return arrays
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(folder.parent / f".{folder.name}.lock")
    try:
        lock.acquire(timeout=0)
    except filelock.Timeout:
        if progress:
            print(f"fractaldb: another process is rendering {folder}; waiting for it", file=sys.stderr, flush=True)
        lock.acquire()
    try:
        arrays = _cached(folder, opts)  # the process we waited for wrote it
        if arrays is not None:
            return arrays
        arrays = {}
        for split, n in (("train", images_per_class), ("test", test_per_class)):
            arrays[f"{split}_images"], arrays[f"{split}_labels"] = render_fractaldb(
                num_classes, n, size, seed=seed, split=split, fill_threshold=fill_threshold, workers=workers,
                progress=progress, **render_kw)

        def write(tmp: Path) -> None:
            tmp.mkdir()
            for n in NAMES:
                np.save(tmp / f"{n}.npy", arrays[n])
            (tmp / "options.json").write_text(json.dumps(opts, indent=1))

        atomic_write(folder, write)  # an interrupted render never leaves half a cache
        # a waiter holds the old file and finds the cache; a newcomer finds the cache before it needs a lock
        Path(lock.lock_file).unlink(missing_ok=True)
        return arrays
    finally:
        lock.release()


def sample_grid(num_classes: int = 10, per_class: int = 8, size: int = 32, *, seed: int = 0, split: str = "train",
                gap: int = 2, **render_kw) -> np.ndarray:
    """A montage for the notebooks: row c holds `per_class` instances of category c, as one uint8 RGB
    image (num_classes * (size + gap) - gap, per_class * (size + gap) - gap, 3), black gaps. Not cached."""
    images, _ = render_fractaldb(num_classes, per_class, size, seed=seed, split=split, workers=1, progress=False,
                                 **render_kw)
    return mosaic(images.transpose(0, 2, 3, 1), cols=per_class, gap=gap, fill=0)
