"""The trainer: loss falls, exact resume, corrupt-checkpoint fallback, SIGTERM, config errors, DDP, EMA."""

import math
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from torch.utils.data import DataLoader

import freqnet
from freqnet.losses import LumaL1Loss
from freqnet.cli import main
from freqnet.training import Trainer, TrainingStopped, load_config
from freqnet.training.config import LossWeights, OptimSection, Stage
from freqnet.training.ema import EMA
from freqnet.training.schedule import loss_weights, lr_factor
from freqnet.training.trainer import epoch_batches, leave_stop_signals_to_main, stop_signals_held

QUICK = {
    "seed": 3, "iterations": 8,
    "model": {"preset": "tiny", "scale": 2, "overrides": {"router_noise": 0.1, "drop_path": 0.1}},
    "data": {"train": {"hr": "builtin:samples", "patch_size": 32, "batch_size": 4, "workers": 0},
             "val": {"hr": None, "every": 0}},
    "optim": {"lr": 1e-3, "warmup": 2},
    "ema": {"decay": 0.9},
    "checkpoint": {"every": 4, "keep_last": 3},
    "log": {"every": 100, "tensorboard": False, "progress": False},
}


def quick(**changes):
    base = yaml.safe_load(yaml.safe_dump(QUICK))
    for dotted, value in changes.items():
        node = base
        *parents, last = dotted.split("__")
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return load_config(base=base)


def stop_at(trainer: Trainer, iteration: int) -> Trainer:
    """Deliver a SIGTERM-equivalent right after `iteration` finishes."""
    step = trainer.step

    def stepping(batch, weights):
        out = step(batch, weights)
        if trainer.iteration + 1 == iteration:
            trainer.stop_signal = signal.SIGTERM
        return out

    trainer.step = stepping
    return trainer


def test_smoke_loss_falls(tmp_path):
    """An untrained model is exactly bicubic (zero-initialised output conv); training must beat that on a
    fixed batch of the training data."""
    config = quick(iterations=60, optim__lr=2e-3, optim__warmup=5, checkpoint__every=60,
                   data__train__patch_size=64, data__train__batch_size=8)
    trainer = Trainer(config, tmp_path / "run")
    samples = [trainer.train_set[i] for i in range(8)]
    lr = torch.stack([s["lr"] for s in samples])
    hr = torch.stack([s["hr"] for s in samples])

    def l1() -> float:
        with torch.no_grad():
            return torch.nn.functional.l1_loss(trainer.model.eval()(lr), hr).item()

    before = l1()
    assert trainer.run() == 0
    after = l1()
    print(f"L1 on a fixed batch: {before:.5f} (bicubic) -> {after:.5f} after 60 iterations")
    assert after < 0.99 * before  # measured here: 0.02690 -> 0.02652 (-1.4 %), deterministic under the seed
    assert (tmp_path / "run" / "config.yaml").is_file() and (tmp_path / "run" / "train.log").is_file()
    model = freqnet.load_model(tmp_path / "run" / "checkpoints" / "iter_00000060_ema.safetensors")
    assert model.config.scale == 2


def test_exact_resume_reproduces_the_uninterrupted_run(tmp_path):
    full = Trainer(quick(), tmp_path / "full")
    full.run()
    first = stop_at(Trainer(quick(), tmp_path / "split"), 4)
    assert first.run() == 0 and first.iteration == 4
    second = Trainer(quick(), tmp_path / "split", resume="auto")
    assert second.resumed_from is not None and second.iteration == 4
    second.run()
    assert [h["total"] for h in first.history + second.history] == [h["total"] for h in full.history]
    for a, b in zip(full.model.state_dict().values(), second.model.state_dict().values()):
        assert torch.equal(a, b)


def test_resume_falls_back_past_a_corrupt_checkpoint(tmp_path):
    Trainer(quick(), tmp_path / "run").run()
    newest = tmp_path / "run" / "checkpoints" / "iter_00000008.state.pt"
    newest.write_bytes(newest.read_bytes()[:100])
    with pytest.warns(UserWarning, match="iter_00000008 unusable .*truncated or corrupt.*falling back"):
        trainer = Trainer(quick(), tmp_path / "run", resume="auto")
    assert trainer.iteration == 4


def test_resume_with_another_model_config_names_the_version_and_the_overrides(tmp_path):
    """A preset redefined by a later version: resuming an old run must say which fields differ, which version wrote
    the checkpoint, and the overrides that rebuild its model; with those overrides it resumes."""
    stop_at(Trainer(quick(), tmp_path / "run"), 4).run()
    changed = quick(model__overrides={"router_noise": 0.1, "drop_path": 0.1, "enc_blocks": [2, 1]})
    with pytest.raises(freqnet.CheckpointError, match=rf"written by freqnet {freqnet.__version__} for a different "
                       r"model: enc_blocks \(1, 1\) \(config: \(2, 1\)\).*model.overrides: \{enc_blocks: \[1, 1\]\}"):
        Trainer(changed, tmp_path / "run", resume="auto")
    assert Trainer(quick(), tmp_path / "run", resume="auto").iteration == 4


def test_a_run_folder_loads_as_its_newest_intact_ema_weights(tmp_path):
    Trainer(quick(), tmp_path / "run").run()
    checkpoints = tmp_path / "run" / "checkpoints"

    def same(a, b):
        return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))

    assert same(freqnet.load_model(tmp_path / "run"), freqnet.load_model(checkpoints / "iter_00000008_ema.safetensors"))
    assert not same(freqnet.load_model(checkpoints), freqnet.load_model(checkpoints / "iter_00000008.safetensors"))
    newest = checkpoints / "iter_00000008.state.pt"
    newest.write_bytes(newest.read_bytes()[:100])
    with pytest.warns(UserWarning, match="iter_00000008 unusable .*taking the previous one"):
        assert same(freqnet.load_model(tmp_path / "run"), freqnet.load_model(checkpoints / "iter_00000004_ema.safetensors"))


def test_keep_last_prunes_old_checkpoints(tmp_path):
    Trainer(quick(iterations=12, checkpoint__keep_last=2), tmp_path / "run").run()
    names = sorted(p.name for p in (tmp_path / "run" / "checkpoints").glob("*.json"))
    assert names == ["iter_00000008.json", "iter_00000012.json"]


@pytest.mark.parametrize("workers", [0, 1])
def test_sigterm_to_the_process_group_saves_and_exits_zero(tmp_path, workers):
    """`timeout`, Ctrl-C and job schedulers signal the whole process group, data-loading workers included: the
    workers must leave the stop to the main process, which saves a checkpoint."""
    config = yaml.safe_load(yaml.safe_dump(QUICK))
    config.update(iterations=100000, log={"every": 1, "tensorboard": False, "progress": False})
    config["data"]["train"]["workers"] = workers
    path = tmp_path / "long.yaml"
    path.write_text(yaml.safe_dump(config))
    run = tmp_path / "run"
    process = subprocess.Popen([sys.executable, "-m", "freqnet", "train", str(path), "--out", str(run)],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    log = run / "train.log"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.is_file() and "iter 2 " in log.read_text()):
        time.sleep(0.2)
    os.killpg(process.pid, signal.SIGTERM)
    output, _ = process.communicate(timeout=120)
    assert process.returncode == 0, output
    assert "SIGTERM received" in output and "--resume auto" in output
    assert list((run / "checkpoints").glob("iter_*.json"))


def test_a_stop_signal_at_worker_start_does_not_kill_the_worker():
    """Each epoch starts new workers; a group-wide SIGTERM landing before a worker ignores it used to kill it
    (and with it the run, before it could save). Sent straight after the fork, it did so about half the time."""
    previous = signal.signal(signal.SIGTERM, lambda *_: None)
    try:
        for _ in range(8):
            loader = DataLoader(list(range(8)), batch_size=2, num_workers=1, worker_init_fn=leave_stop_signals_to_main)
            with stop_signals_held():
                batches = iter(loader)
                os.kill(batches._workers[0].pid, signal.SIGTERM)
            assert [b.tolist() for b in batches] == [[0, 1], [2, 3], [4, 5], [6, 7]]
    finally:
        signal.signal(signal.SIGTERM, previous)


def test_non_finite_steps_stop_the_run_with_a_checkpoint(tmp_path):
    trainer = Trainer(quick(max_bad_steps=2, optim__lr=1e30, optim__warmup=0, optim__grad_clip=0.0), tmp_path / "run")
    with pytest.raises(TrainingStopped, match="non-finite steps in a row"):
        trainer.run()
    assert any(h["skipped"] for h in trainer.history)
    assert list((tmp_path / "run" / "checkpoints").glob("*.json"))


def test_config_errors_name_the_key_and_the_closest(tmp_path, capsys):
    with pytest.raises(ValueError, match="config optim.warmpu: unknown key; did you mean 'warmup'"):
        load_config(base={**QUICK, "optim": {"warmpu": 10}})
    with pytest.raises(ValueError, match="config data.train.batch_size: expected int, got 'four'"):
        quick(data__train__batch_size="four")
    with pytest.raises(ValueError, match="model.overrides: unknown ModelConfig field 'use_moee'; did you mean 'use_moe'"):
        quick(model__overrides={"use_moee": False})
    with pytest.raises(ValueError, match="config compile_mode: default, reduce-overhead"):
        quick(compile_mode="cudagraphs")
    with pytest.raises(ValueError, match="config data.train.detail_candidates: at least 1"):
        quick(data__train__detail_candidates=0)
    with pytest.raises(ValueError, match="detail_candidates: 1 with a paired LR folder"):
        quick(data__train__detail_candidates=2, data__train__lr=str(tmp_path))
    with pytest.raises(ValueError, match="detail_candidates: 1 at scale 1"):
        quick(model__scale=1, data__train__detail_candidates=2)
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({**QUICK, "ema": {"decai": 0.9}}))
    assert main(["train", str(path), "--out", str(tmp_path / "r")]) == 2
    assert "config ema.decai: unknown key; did you mean 'decay'" in capsys.readouterr().err
    assert main(["train", str(path), "--set", "ema.decai=0.5", "--set", "optim.lrr=1"]) == 2


def test_schedule_and_curriculum():
    optim = OptimSection(lr=1.0, warmup=10, schedule="cosine", min_lr=0.0)
    assert lr_factor(0, 110, optim) == pytest.approx(0.1)
    assert lr_factor(10, 110, optim) == pytest.approx(1.0)
    assert lr_factor(60, 110, optim) == pytest.approx(0.5)
    assert lr_factor(110, 110, optim) == pytest.approx(0.0, abs=1e-12)
    steps = OptimSection(lr=1.0, warmup=0, schedule="multistep", milestones=[5, 8], gamma=0.1)
    assert [lr_factor(i, 10, steps) for i in (4, 5, 8)] == pytest.approx([1.0, 0.1, 0.01])
    stages = [Stage(start=10, ramp=4, losses={"perceptual": 1.0}), Stage(start=20, losses={"gan": 0.1})]
    base = LossWeights()
    assert loss_weights(9, base, stages)["perceptual"] == 0.0
    assert loss_weights(11, base, stages)["perceptual"] == pytest.approx(0.5)
    assert loss_weights(13, base, stages)["perceptual"] == 1.0 and loss_weights(13, base, stages)["gan"] == 0.0
    assert loss_weights(20, base, stages)["gan"] == pytest.approx(0.1)


def test_ema_of_a_constant_model_is_that_model():
    model = freqnet.build_model("tiny", 2)
    ema = EMA(model, 0.9)
    for _ in range(5):
        ema.update(model)
    for (name, a), b in zip(model.state_dict().items(), ema.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6, msg=name)


def test_ema_update_is_the_decayed_average_and_copies_at_zero_decay():
    torch.manual_seed(0)
    model, other = freqnet.build_model("tiny", 2), freqnet.build_model("tiny", 2)
    ema = EMA(model, 0.9)
    ema.update(other)
    for (name, a), b, c in zip(model.state_dict().items(), other.state_dict().values(), ema.state_dict().values()):
        expected = 0.9 * a + 0.1 * b if a.dtype.is_floating_point else b
        torch.testing.assert_close(c, expected, rtol=1e-6, atol=1e-7, msg=name)
    ema.update(model, decay=0.0)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ema.state_dict().values()))


def test_epoch_batches_split_each_global_batch_across_ranks():
    single = epoch_batches(20, 8, seed=1, epoch=0, rank=0, world=1)
    parts = [epoch_batches(20, 8, seed=1, epoch=0, rank=r, world=2) for r in range(2)]
    assert len(single) == 2
    for i, batch in enumerate(single):
        assert parts[0][i] + parts[1][i] == batch


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DDP_CONFIG = dict(QUICK, iterations=3, model={"preset": "tiny", "scale": 2, "overrides": {
    "router_noise": 0.0, "drop_path": 0.0, "capacity_factor": 8.0, "moe_balance_weight": 0.0}},
    checkpoint={"every": 100, "keep_last": 1})


def ddp_worker(rank: int, world: int, port: int, out_dir: str, accumulate: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    trainer = Trainer(load_config(base=DDP_CONFIG, overrides=[("optim.accumulate", accumulate)]), f"{out_dir}/run")
    trainer.run()
    torch.save({k: v.clone() for k, v in trainer.model.state_dict().items()}, f"{out_dir}/rank{rank}.pt")
    torch.distributed.destroy_process_group()


@pytest.mark.parametrize("accumulate", [1, 2])
def test_two_process_ddp_matches_single_process(tmp_path, accumulate):
    """2 gloo ranks, global batch 4 (2 each, in 1 or 2 passes, all-reduced after the last): parameters stay
    identical across ranks and match one process with batch 4 in one pass. MoE balance weight is 0 here: the
    Switch balance loss is computed per rank, so it is not additive."""
    torch.multiprocessing.spawn(ddp_worker, args=(2, free_port(), str(tmp_path), accumulate), nprocs=2, join=True)
    rank0, rank1 = torch.load(tmp_path / "rank0.pt"), torch.load(tmp_path / "rank1.pt")
    for key in rank0:
        assert torch.equal(rank0[key], rank1[key]), key
    single = Trainer(load_config(base=DDP_CONFIG), tmp_path / "single")
    single.run()
    for key, value in single.model.state_dict().items():
        torch.testing.assert_close(rank0[key], value, rtol=1e-4, atol=1e-5, msg=key)


def test_accumulated_passes_take_the_step_of_one_pass(tmp_path):
    """Batch 4 in 1, 2 and 4 forward/backward passes: each forward sees 4/N samples, and losses, gradient norms
    (the gradient, not only its direction, which Adam would forgive) and weights after 3 steps match one pass.
    DDP_CONFIG leaves out what depends on the pass's batch: router noise, drop-path, dropped tokens, balance loss."""
    runs = {}
    for passes in (1, 2, 4):
        trainer = Trainer(load_config(base=DDP_CONFIG, overrides=[("optim.accumulate", passes)]), tmp_path / f"{passes}")
        sizes = []
        trainer.model.register_forward_pre_hook(lambda _module, args: sizes.append(args[0].shape[0]))
        trainer.run()
        assert sizes == [4 // passes] * (3 * passes)
        runs[passes] = trainer
    one = runs[1]
    for passes in (2, 4):
        for name in ("total", "l1", "grad_norm"):
            assert [h[name] for h in runs[passes].history] == pytest.approx([h[name] for h in one.history], rel=1e-5)
        for key, value in one.model.state_dict().items():
            torch.testing.assert_close(runs[passes].model.state_dict()[key], value, rtol=1e-4, atol=1e-5, msg=key)


def test_luma_loss_is_the_term_the_trainer_weighs(tmp_path):
    """`losses.l1_y` reaches the step as LumaL1Loss of the output, in the total at its weight beside `l1`."""
    trainer = Trainer(load_config(base=DDP_CONFIG, overrides=[("losses.l1", 0.25), ("losses.l1_y", 1.0)]),
                      tmp_path / "run")
    batch = next(trainer.batches())
    output, terms = trainer.loss_terms(batch["lr"], batch["hr"], loss_weights(0, trainer.config.losses, []))
    assert set(terms) == {"l1", "l1_y", "moe_aux"}
    assert terms["l1_y"].item() == pytest.approx(LumaL1Loss()(output.float(), batch["hr"]).item(), rel=1e-6)
    assert terms["l1_y"].item() < terms["l1"].item()  # Y's weights sum to 219/255 and chroma errors drop out
    trainer.run()
    assert [h["l1_y"] > 0 for h in trainer.history] == [True] * trainer.config.iterations


def test_gan_training_with_accumulated_passes_updates_both_networks(tmp_path):
    config = load_config(base=DDP_CONFIG, overrides=[("iterations", 2), ("optim.accumulate", 2), ("losses.gan", 0.1),
                                                     ("gan.features", 16)])
    trainer = Trainer(config, tmp_path / "run")
    generator = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.ensure_gan()
    discriminator = {k: v.clone() for k, v in trainer.discriminator.state_dict().items()}
    assert trainer.run() == 0
    assert all(math.isfinite(h["gan"]) and h["skipped"] == 0 for h in trainer.history)
    assert any(not torch.equal(v, trainer.model.state_dict()[k]) for k, v in generator.items())
    assert any(not torch.equal(v, trainer.discriminator.state_dict()[k]) for k, v in discriminator.items()
               if k.endswith("weight_orig") or k.endswith("weight"))


def test_accumulate_must_divide_the_batch():
    with pytest.raises(ValueError, match="optim.accumulate: must divide data.train.batch_size"):
        quick(optim__accumulate=3)


@pytest.mark.parametrize("path", sorted((Path(__file__).resolve().parent.parent / "configs").glob("*.yaml")),
                         ids=lambda path: path.stem)
def test_shipped_configs_are_valid(path):
    assert load_config(path).name == path.stem


@pytest.mark.parametrize("precision", ["bf16", "fp16"])
def test_mixed_precision_training_steps_are_finite(tmp_path, precision):
    trainer = Trainer(quick(iterations=3, precision=precision), tmp_path / "run")
    assert trainer.run() == 0
    assert all(math.isfinite(h["total"]) for h in trainer.history)


def test_auto_precision_trains_in_bf16_only_on_a_cpu_with_native_bf16(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx512_bf16": True})
    trainer = Trainer(quick(iterations=2, precision="auto"), tmp_path / "native")
    assert trainer.precision == "bf16" and trainer.run() == 0
    assert "precision bf16" in (tmp_path / "native" / "train.log").read_text()
    monkeypatch.setattr(torch.cpu, "get_capabilities", lambda: {"avx2": True})
    assert Trainer(quick(precision="auto"), tmp_path / "emulated").precision == "fp32"


def test_fallback_to_fp32_after_bad_steps(tmp_path):
    config = quick(iterations=4, precision="bf16", fallback_fp32=True, max_bad_steps=1)
    trainer = Trainer(config, tmp_path / "run")
    original = trainer.step

    def poisoned(batch, weights):  # the first step "overflows"; the fallback must carry on in fp32
        out = original(batch, weights)
        if trainer.iteration == 0:
            out["skipped"], trainer.bad_steps = 1.0, 1
        return out

    trainer.step = poisoned
    assert trainer.run() == 0
    assert trainer.precision == "fp32"
    assert "falling back from bf16 to fp32" in (tmp_path / "run" / "train.log").read_text()
    assert Trainer(config, tmp_path / "run", resume="auto").precision == "fp32"  # the fallback outlives a resume


def test_resume_takes_the_configs_precision(tmp_path):
    Trainer(quick(iterations=4), tmp_path / "run").run()
    resumed = Trainer(quick(iterations=6, precision="bf16"), tmp_path / "run", resume="auto")
    assert resumed.iteration == 4 and resumed.precision == "bf16"
    assert resumed.run() == 0 and all(math.isfinite(h["total"]) for h in resumed.history)
