"""The command line as a front door: one-line errors that name the flag, defaults that fit a CPU, --version."""

import copy
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import vitlib
import vitlib.cli.training
import vitlib.data
import vitlib.finetune
import vitlib.pretrain
import vitlib.train
from vitlib.cli import build_parser, main
from vitlib.cli.errors import blame, one_line
from vitlib.cli.training import CPU_ESTIMATE_BATCH, CPU_FINETUNE_BATCH, ESTIMATE_STEPS, measure
from vitlib.config import ConfigError, TrainConfig, ViTConfig
from vitlib.train import NonFiniteLossError, finetune_recipe, pretrain_recipe

ROOT = Path(__file__).resolve().parents[1]


def _error_line(capsys, argv):
    """Run the CLI in-process; it must exit with status 2 and print exactly one line on stderr."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("vitlib ")]
    assert e.value.code == 2, err
    assert lines and lines[-1].startswith(f"vitlib {argv[0]}: error: "), err
    assert "Traceback" not in err
    return lines[-1]


def _run(*argv, env=None, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "vitlib", *argv], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=300, **kw)


@pytest.mark.parametrize("argv, says", [
    (["finetune", "--dataset", "digits", "--img-size", "32", "--out-dir", "x", "--steps", "0"], "argument --steps"),
    (["finetune", "--dataset", "nope", "--img-size", "32", "--out-dir", "x"], "argument --dataset"),
    (["finetune", "--dataset", "digits", "--img-size", "32", "--out-dir", "x", "--val-fraction", "1"],
     "argument --val-fraction: 1.0 is not a share in [0, 1)"),
    (["finetune", "--dataset", "digits", "--img-size", "32", "--out-dir", "x", "--steps", "50",
      "--warmup-steps", "60"], "--warmup-steps 60 must lie in [0, --steps 50]"),
    (["finetune", "--dataset", "digits", "--img-size", "30", "--out-dir", "x", "--no-estimate"], "--img-size"),
    (["finetune", "--dataset", "digits", "--img-size", "32", "--out-dir", "x", "--checkpoint", "no/such.pth"],
     "argument --checkpoint"),
    (["finetune", "--dataset", "digits", "--img-size", "32", "--out-dir", "x", "--data-dir", "."], "--data-dir"),
    (["finetune", "--dataset", "digits", "--img-size", "32", "--out-dir", "x", "--from-scratch", "--linear-probe"],
     "argument --linear-probe: --linear-probe trains the head alone"),
    (["pretrain", "--model", "ViT-Q/3", "--out-dir", "x"], "argument --model: unknown model name 'ViT-Q/3'"),
    (["pretrain", "--dataset", "digits", "--num-classes", "5", "--out-dir", "x"], "--num-classes"),
    (["pretrain", "--lr", "nan", "--out-dir", "x"], "argument --lr"),
    (["evaluate", "--checkpoint", "no/such", "--dataset", "digits"], "argument --checkpoint"),
    (["bench", "--models", "ViT-X/99"], "argument --models: unknown model(s) ['ViT-X/99']"),
])
def test_an_expected_failure_is_one_line_that_names_the_flag(argv, says, capsys):
    assert says in _error_line(capsys, argv)


def test_a_missing_dataset_names_the_flag_not_the_python_argument(tmp_path, capsys):
    line = _error_line(capsys, ["finetune", "--dataset", "cifar10", "--img-size", "32", "--out-dir", "x",
                                "--data-dir", str(tmp_path)])
    assert "dataset 'cifar10' not found" in line and "Pass --data-dir the folder" in line and "--download" in line
    assert "data_dir=" not in line and "download=True" not in line
    with pytest.raises(vitlib.data.DatasetNotFoundError, match="data_dir="):  # Python callers keep their words
        vitlib.data.get_dataset("cifar10", "train", 32, data_dir=tmp_path)


def test_a_checkpoint_for_another_model_is_refused(capsys):
    line = _error_line(capsys, ["evaluate", "--checkpoint", str(vitlib.finetune.SHIPPED), "--dataset", "digits"])
    classes = vitlib.checkpoints.load_model(vitlib.finetune.SHIPPED).cfg.num_classes  # the shipped model's
    assert "pass a --checkpoint trained on digits" in line and f"{classes} classes" in line and "digits has 10" in line


def test_resuming_with_another_model_names_resume_and_out_dir(tmp_path, capsys):
    run = ["pretrain", "--profile", "smoke", "--steps", "2", "--out-dir", str(tmp_path), "--no-progress"]
    main(run)
    err = capsys.readouterr().err
    assert "64 training images" in err and "estimated" in err and "images/s" in err  # announced before the run
    assert f"measured over {ESTIMATE_STEPS} steps of 32" in err  # at the run's own batch (the smoke profile's)
    line = _error_line(capsys, run + ["--resume", "--img-size", "16"])
    assert "--resume continues the run saved in --out-dir" in line and "--img-size" in line


def test_a_non_finite_loss_is_one_line_in_flags(monkeypatch, capsys, tmp_path):
    def explode(*a, **k):  # the library's words are for Python callers; the CLI tells its attributes in flags
        raise NonFiniteLossError("lr=0.03, precision='fp32', grad_clip, resume=True", step=3, loss=float("nan"),
                                 grad_norm=float("nan"), last_finite_loss=2.0)

    monkeypatch.setattr(vitlib.cli.training, "train", explode)
    run = ["finetune", "--dataset", "digits", "--img-size", "32", "--out-dir", str(tmp_path), "--no-estimate",
           "--steps", "10", "--bf16"]
    line = _error_line(capsys, run)
    assert "non-finite loss at step 3" in line and "the last finite loss was 2" in line
    assert "(--lr 0.03)" in line and "--fp32 (bf16" in line and "smaller --grad-clip than 1" in line
    assert "no checkpoint was written" in line and "=" not in line
    (tmp_path / "step_0000002.json").write_text("{}")  # a checkpoint of the run, before the failure
    assert "step_0000002, holds finite weights: with the same flags, --resume continues" in _error_line(capsys, run)


def _finetune_parser():
    return build_parser()._subparsers._group_actions[0].choices["finetune"]


def test_a_config_error_names_the_flags_of_its_fields():
    finetune = _finetune_parser()
    e = ConfigError("$warmup_steps= must lie in [0, $steps=]; $precision=, $compile=, $patch_size=; $lr, $precision",
                    dict(warmup_steps=500, steps=50, precision="bf16", compile=False, patch_size=4, lr=0.1))
    assert str(e) == ("warmup_steps=500 must lie in [0, steps=50]; precision='bf16', compile=False, patch_size=4; "
                      "lr, precision")  # Python callers keep their words
    assert one_line(e, finetune) == ("--warmup-steps 500 must lie in [0, --steps 50]; --bf16, --no-compile, "
                                     "patch_size=4; --lr, precision")  # no flag sets patch_size: as it is
    with pytest.raises(ConfigError) as caught:
        TrainConfig(steps=0)
    assert caught.value.field == "steps" and one_line(caught.value, finetune).startswith("--steps and --batch-size")


def test_a_blamed_error_names_its_flag_unless_its_field_has_one():
    finetune = _finetune_parser()
    with pytest.raises(Exception) as e, blame("--checkpoint"):
        ViTConfig(img_size=30, patch_size=4)
    assert one_line(e.value, finetune).startswith("--img-size 30x30 is not divisible by patch_size P=4")
    with pytest.raises(Exception) as e, blame("--checkpoint"):
        ViTConfig(pool="max")
    assert one_line(e.value, finetune) == "argument --checkpoint: pool must be 'token' or 'gap', got 'max'"
    with pytest.raises(Exception) as e, blame("--dataset"):
        raise OSError("no such file")
    assert one_line(e.value, finetune) == "argument --dataset: no such file"


def test_debug_shows_the_traceback(monkeypatch):
    argv = ["finetune", "--dataset", "digits", "--img-size", "32", "--out-dir", "x", "--steps", "5",
            "--warmup-steps", "6"]
    plain = _run(*argv)  # what a shell shows: one line, status 2
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    assert plain.stderr.strip() == "vitlib finetune: error: --warmup-steps 6 must lie in [0, --steps 5]"
    assert issubclass(ConfigError, ValueError)  # what Python callers catch
    with pytest.raises(ConfigError):  # raised on: Python prints its traceback and exits with status 1
        main(argv + ["--debug"])
    monkeypatch.setenv("VITLIB_DEBUG", "1")
    with pytest.raises(ConfigError):
        main(argv)


def test_short_runs_get_a_short_warmup():
    assert finetune_recipe(steps=50).warmup_steps == 5  # the recipe's 500 would not fit
    assert pretrain_recipe(steps=300).warmup_steps == 30
    assert finetune_recipe().warmup_steps == 500 and pretrain_recipe().warmup_steps == 10_000  # the paper's
    assert finetune_recipe(steps=50, warmup_steps=None).warmup_steps == 5
    assert finetune_recipe(steps=50, warmup_steps=0).warmup_steps == 0  # given: kept


def test_batch_fits_a_cpu_and_the_paper_batch_is_one_flag_away(monkeypatch, capsys):
    seen = []
    monkeypatch.setattr(vitlib.cli.training, "train", lambda model, data, cfg, **kw: seen.append(cfg) or {"val": []})
    base = ["finetune", "--dataset", "digits", "--img-size", "32", "--out-dir", "x", "--steps", "50", "--no-estimate"]
    main(base)
    main(base + ["--paper-batch"])
    main(base + ["--paper-batch", "--batch-size", "8"])  # the last one counts
    assert [c.batch_size for c in seen] == [CPU_FINETUNE_BATCH, finetune_recipe().batch_size, 8]
    assert all(c.warmup_steps == 5 for c in seen)
    assert "50 steps of 32" in capsys.readouterr().err  # the images it will see, announced
    with pytest.raises(SystemExit):
        main(["finetune", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"(default {CPU_FINETUNE_BATCH}, sized for a CPU)" in help_text
    assert f"the paper's batch size, {finetune_recipe().batch_size}" in help_text


def test_val_fraction_0_trains_on_every_image_and_evaluate_reads_a_runs_folder(tmp_path, capsys, monkeypatch):
    """The front door's pair: `finetune --val-fraction 0` (every training image, as the time-to-accuracy runs
    train), then `evaluate --checkpoint OUT_DIR` on the test set, whatever step the run's length ended at."""
    seen, real = {}, vitlib.cli.training.train
    monkeypatch.setattr(vitlib.cli.training, "train", lambda model, data, cfg, **kw: seen.update(
        n=len(data), val=kw["val_set"]) or real(model, data, cfg, **kw))
    run = tmp_path / "ft"
    main(["finetune", "--dataset", "digits", "--img-size", "32", "--out-dir", str(run), "--steps", "2",
          "--batch-size", "8", "--val-fraction", "0", "--no-estimate", "--no-progress"])
    said = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert seen == dict(n=len(vitlib.data.get_dataset("digits", "train", 32, val_fraction=0.0)), val=None)
    assert said["val"] is None and said["checkpoint"].endswith("step_0000002")
    main(["evaluate", "--checkpoint", str(run), "--dataset", "digits", "--limit", "16"])
    assert json.loads(capsys.readouterr().out)["n"] == 16
    with pytest.raises(FileNotFoundError, match="no vitlib checkpoint in the folder"):
        vitlib.checkpoints.load_model(tmp_path)


def test_from_scratch_and_augment_reach_the_model_and_the_data(monkeypatch):
    """`--from-scratch`: none of the checkpoint's weights; `--augment none`: the images as they are, `crop-flip`:
    random resized crops and flips; by default the checkpoint's weights and the recipe's augmentation: crops and
    flips for the paper's recipe, flips without crops for the small-data recipe (the benchmark's `vit-scratch`)."""
    seen = []
    monkeypatch.setattr(vitlib.cli.training, "train", lambda model, data, cfg, **kw: seen.append((model, data)) or
                        {"val": []})
    base = ["finetune", "--dataset", "fashion_mnist", "--img-size", "28", "--out-dir", "x", "--steps", "2",
            "--no-estimate"]
    main(base)
    main(base + ["--from-scratch", "--augment", "none"])
    main(base + ["--recipe", "small-data"])
    main(base + ["--recipe", "small-data", "--augment", "crop-flip"])
    shipped = vitlib.finetune.load_pretrained("").state_dict()["blocks.0.attn.qkv.weight"]
    (tuned, augmented), (scratch, plain), (_, flipped), (_, cropped) = seen
    assert torch.equal(tuned.state_dict()["blocks.0.attn.qkv.weight"], shipped)
    assert not torch.equal(scratch.state_dict()["blocks.0.attn.qkv.weight"], shipped)
    assert scratch.cfg == tuned.cfg and (augmented.transform.augment, plain.transform.augment) == (True, False)
    assert flipped.transform.hflip and flipped.transform.crop_scale == flipped.transform.crop_ratio == (1.0, 1.0)
    for crops in (augmented, cropped):
        assert crops.transform.hflip and crops.transform.crop_scale == (0.35, 1.0)


def test_version_and_the_console_script(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.startswith(f"vitlib {vitlib.__version__} ")
    pyproject = (ROOT / "pyproject.toml").read_text()  # `vitlib ...` runs the same main as `python -m vitlib`
    assert '[project.scripts]\nvitlib = "vitlib.cli:main"' in pyproject


def test_device_is_checked_before_anything_runs(capsys):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    assert "argument --device" in _error_line(capsys, ["pretrain", "--device", "cuda", "--out-dir", "x"])


def test_the_time_estimate_leaves_the_run_unchanged(tmp_path, capsys):
    from vitlib import pretrain
    from vitlib.checkpoints import load_model

    main(["pretrain", "--profile", "smoke", "--steps", "3", "--out-dir", str(tmp_path / "cli"), "--no-progress"])
    assert "estimated" in capsys.readouterr().err
    s = pretrain.spec("smoke", train_overrides=dict(steps=3, warmup_steps=None, progress=False))  # as --steps 3
    model, _ = pretrain.run(s, tmp_path / "python")
    cli = load_model(tmp_path / "cli" / "step_0000003")
    for (k, a), b in zip(model.state_dict().items(), cli.state_dict().values()):
        assert torch.equal(a, b), k


def test_the_time_estimate_runs_train_at_the_runs_batch():
    torch.manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(40, 3, 8, 8), torch.randint(0, 2, (40,)))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(192, 2))
    before, rng = copy.deepcopy(model.state_dict()), torch.random.get_rng_state()
    for batch, measured in ((16, 16), (1000, 40)):  # the run's own batch, at most the training set
        rate, used = measure(model, data, TrainConfig(steps=10_000, batch_size=batch, warmup_steps=500, device="cpu",
                                                      compile=True, progress=True))
        assert used == measured and rate > 0
    assert CPU_ESTIMATE_BATCH >= vitlib.pretrain.PROFILES["full"].train["batch_size"]  # measured as it is
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the model is untouched
    assert torch.equal(rng, torch.random.get_rng_state())  # and so is the random state


def test_the_time_estimate_is_vitlib_train(monkeypatch):
    seen = []

    def fake(model, data, cfg, **kw):
        seen.append(cfg)
        return {"train": [{"images_per_s": r} for r in (1.0, 30.0, 10.0, 20.0)], "val": []}

    monkeypatch.setattr(vitlib.cli.training, "train", fake)
    data = torch.utils.data.TensorDataset(torch.zeros(500, 1), torch.zeros(500, dtype=torch.long))
    rate, batch = measure(torch.nn.Linear(1, 2), data, TrainConfig(batch_size=256, device="cpu", precision="bf16"))
    assert rate == 20.0 and batch == min(256, CPU_ESTIMATE_BATCH)  # the warm-up record left out: median of the rest
    assert seen[0].steps == ESTIMATE_STEPS + 1 and seen[0].log_every == 1 and seen[0].precision == "bf16"
