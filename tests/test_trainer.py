"""The shared training loop: exact resume, atomic checkpoints, clear errors."""

import json

import pytest
import torch
from torch import nn

from artgen.errors import ArtgenError
from artgen.training.trainer import STATE_DIR, ResumeRefused, TrainConfig, find_checkpoint, lr_at, train

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class Crash(RuntimeError):
    pass


class ToyTask:
    """Regress y = x @ W on a fixed random dataset; dropout exercises the global RNG."""

    def __init__(self, init_seed=0, crash_at=None):
        g = torch.Generator().manual_seed(123)
        self.x = torch.randn(256, 8, generator=g)
        self.y = self.x @ torch.randn(8, 2, generator=g)
        torch.manual_seed(init_seed)
        self.model = nn.Sequential(nn.Linear(8, 16), nn.Dropout(0.1), nn.ReLU(), nn.Linear(16, 2))
        self.crash_at = crash_at

    def batch(self, step, generator, batch_size):
        if step == self.crash_at:
            raise Crash(f"killed at step {step}")
        idx = torch.randint(0, len(self.x), (batch_size,), generator=generator)
        return self.x[idx], self.y[idx]

    def loss(self, model, batch):
        x, y = batch
        loss = ((model(x) - y) ** 2).mean()
        return loss, {"rmse": loss.detach().sqrt()}

    def evaluate(self, model):
        with torch.no_grad():
            return {"test_mse": float(((model(self.x) - self.y) ** 2).mean())}

    def config(self):
        return {"kind": "toy", "hidden": 16}


def cfg(**kw):
    base = dict(steps=20, batch_size=16, lr=1e-2, warmup_steps=3, checkpoint_every=5, log_every=2,
                show_progress=False, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def weights(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def test_killed_and_resumed_run_ends_with_the_same_weights(tmp_path):
    full = train(ToyTask(), cfg(), tmp_path / "full")
    with pytest.raises(Crash):
        train(ToyTask(crash_at=12), cfg(), tmp_path / "killed")
    saved = json.loads((tmp_path / "killed" / STATE_DIR / "config.json").read_text())
    assert saved["step"] == 10
    # A different initialisation proves the weights come from the checkpoint, not the seed.
    resumed = train(ToyTask(init_seed=99), cfg(), tmp_path / "killed", resume=True)
    a, b = weights(full.model), weights(resumed.model)
    assert a.keys() == b.keys()
    diff = max((a[k] - b[k]).abs().max().item() for k in a)
    assert diff <= 1e-6
    assert full.metrics["test_mse"] < ToyTask().evaluate(ToyTask().model)["test_mse"]


def test_a_crash_while_saving_leaves_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    import safetensors.torch as st

    real = st.save_file
    calls = {"n": 0}

    def flaky(tensors, path, *a, **k):
        calls["n"] += 1
        if calls["n"] > 3 and path.endswith("optimizer.safetensors"):  # during the 2nd checkpoint
            real(tensors, path, *a, **k)
            raise OSError("disk full")
        return real(tensors, path, *a, **k)

    monkeypatch.setattr(st, "save_file", flaky)
    with pytest.raises(OSError):
        train(ToyTask(), cfg(), tmp_path / "run")
    ckpt = find_checkpoint(tmp_path / "run")
    assert ckpt == tmp_path / "run" / STATE_DIR
    assert json.loads((ckpt / "config.json").read_text())["step"] == 5
    monkeypatch.setattr(st, "save_file", real)
    resumed = train(ToyTask(), cfg(), tmp_path / "run", resume=True)
    full = train(ToyTask(), cfg(), tmp_path / "full")
    a, b = weights(full.model), weights(resumed.model)
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6


def test_a_corrupt_checkpoint_is_an_error_not_a_fresh_start(tmp_path):
    train(ToyTask(), cfg(steps=5), tmp_path / "run")
    f = tmp_path / "run" / STATE_DIR / "model.safetensors"
    f.write_bytes(f.read_bytes()[:40])
    with pytest.raises(ArtgenError, match="damaged"):
        train(ToyTask(), cfg(steps=10), tmp_path / "run", resume=True)


def test_resume_without_a_checkpoint_or_with_other_options_is_refused(tmp_path):
    with pytest.raises(ArtgenError, match="nothing to resume"):
        train(ToyTask(), cfg(), tmp_path / "none", resume=True)
    train(ToyTask(), cfg(steps=5), tmp_path / "run")
    with pytest.raises(ArtgenError, match="different training options"):
        train(ToyTask(), cfg(steps=10, lr=0.5), tmp_path / "run", resume=True)
    state = tmp_path / "run" / STATE_DIR / "config.json"
    meta = json.loads(state.read_text())
    assert meta["world"] == 1
    state.write_text(json.dumps({**meta, "world": 2}))  # as `torchrun --nproc_per_node 2` leaves it
    with pytest.raises(ResumeRefused, match="2 training process"):
        train(ToyTask(), cfg(steps=10), tmp_path / "run", resume=True)
    state.write_text(json.dumps({k: v for k, v in meta.items() if k != "world"}))  # before it was recorded: one process
    assert train(ToyTask(), cfg(steps=10), tmp_path / "run", resume=True).metrics


def test_learning_rate_warms_up_then_decays_by_cosine():
    c = cfg(steps=100, warmup_steps=10, lr=1.0, min_lr_ratio=0.1)
    lrs = [lr_at(s, c) for s in range(100)]
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert all(a >= b for a, b in zip(lrs[10:], lrs[11:]))
    assert lrs[-1] == pytest.approx(0.1, abs=1e-3)


class RawScoringToyTask(ToyTask):
    """A task whose evaluation can score the raw weights beside their moving average."""

    def evaluate(self, model, raw_model=None):
        row = super().evaluate(model)
        if raw_model is not None:
            row["raw_test_mse"] = super().evaluate(raw_model)["test_mse"]
        return row


def test_the_moving_average_of_the_weights_is_returned_scored_and_resumed_exactly(tmp_path):
    decay = 0.8
    # the average, recomputed by hand from every step's raw weights
    snapshots = []

    class Recording(RawScoringToyTask):
        def batch(self, step, generator, batch_size):
            snapshots.append(weights(self.model))  # the weights after step - 1
            return super().batch(step, generator, batch_size)

    task = Recording()
    run = train(task, cfg(ema_decay=decay), tmp_path / "full")
    snapshots.append(weights(task.model))
    expected = snapshots[1]  # the first update copies the weights after step 0
    for w in snapshots[2:]:
        expected = {k: decay * expected[k] + (1 - decay) * w[k] for k in w}
    got = weights(run.model)
    assert max((got[k] - expected[k]).abs().max().item() for k in got) <= 1e-5
    assert any((got[k] - snapshots[-1][k]).abs().max().item() > 1e-3 for k in got)  # not the raw weights
    assert run.metrics["test_mse"] == pytest.approx(ToyTask.evaluate(task, run.model)["test_mse"])
    assert run.metrics["raw_test_mse"] == pytest.approx(ToyTask.evaluate(task, task.model.eval())["test_mse"])
    assert (tmp_path / "full" / STATE_DIR / "ema.safetensors").exists()

    with pytest.raises(Crash):
        train(RawScoringToyTask(crash_at=12), cfg(ema_decay=decay), tmp_path / "killed")
    resumed = train(RawScoringToyTask(init_seed=99), cfg(ema_decay=decay), tmp_path / "killed", resume=True)
    a, b = weights(run.model), weights(resumed.model)
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6


def test_a_moving_average_decay_outside_0_1_is_refused(tmp_path):
    with pytest.raises(ArtgenError, match="ema_decay"):
        train(ToyTask(), cfg(ema_decay=1.0), tmp_path / "run")


@pytest.mark.slow
def test_a_compiled_run_trains_the_same_model_as_an_eager_one(tmp_path):
    def no_dropout():  # Inductor draws dropout masks from its own generator
        task = ToyTask()
        task.model[1] = nn.Identity()
        return task

    eager = train(no_dropout(), cfg(), tmp_path / "eager")
    compiled = train(no_dropout(), cfg(compile=True), tmp_path / "compiled")
    a, b = weights(eager.model), weights(compiled.model)
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-4


class BlockToyTask(ToyTask):
    """ToyTask with its hidden layers in `blocks`, where Muon looks for matrices."""

    def __init__(self, init_seed=0, crash_at=None):
        super().__init__(init_seed, crash_at)
        torch.manual_seed(init_seed)
        self.model = nn.Sequential()
        self.model.inp = nn.Linear(8, 16)
        self.model.blocks = nn.Sequential(nn.Linear(16, 16), nn.Dropout(0.1), nn.ReLU(), nn.Linear(16, 16), nn.ReLU())
        self.model.head = nn.Linear(16, 2)


def test_muon_trains_the_block_matrices_and_resumes_exactly(tmp_path):
    from artgen.training.optimizers import MuonAdamW, build_optimizer

    task = BlockToyTask()
    opt = build_optimizer(task.model, "muon", 1e-2, (0.9, 0.99), 0.01)
    assert isinstance(opt, MuonAdamW)
    hidden = {id(p) for g in opt.muon.param_groups for p in g["params"]}
    assert hidden == {id(task.model.blocks[0].weight), id(task.model.blocks[3].weight)}
    assert len(opt.param_groups) == 3  # Muon's, then AdamW's with and without decay

    full = train(BlockToyTask(), cfg(optimizer="muon"), tmp_path / "full")
    with pytest.raises(Crash):
        train(BlockToyTask(crash_at=12), cfg(optimizer="muon"), tmp_path / "killed")
    resumed = train(BlockToyTask(init_seed=99), cfg(optimizer="muon"), tmp_path / "killed", resume=True)
    a, b = weights(full.model), weights(resumed.model)
    assert max((a[k] - b[k]).abs().max().item() for k in a) <= 1e-6
    adamw = train(BlockToyTask(), cfg(), tmp_path / "adamw")
    assert not torch.equal(weights(adamw.model)["blocks.0.weight"], a["blocks.0.weight"])
    assert full.metrics["test_mse"] < BlockToyTask().evaluate(BlockToyTask().model)["test_mse"]
    with pytest.raises(ArtgenError, match="different training options"):
        train(BlockToyTask(), cfg(steps=30), tmp_path / "full", resume=True)  # adamw now: refused


def test_an_unknown_optimizer_or_muon_without_blocks_is_a_clear_error(tmp_path):
    with pytest.raises(ArtgenError, match="unknown optimizer"):
        train(ToyTask(), cfg(optimizer="sgd"), tmp_path / "a")
    with pytest.raises(ArtgenError, match="no transformer block matrices"):
        train(ToyTask(), cfg(optimizer="muon"), tmp_path / "b")


def test_a_checkpoint_from_before_an_option_existed_resumes_with_its_default(tmp_path):
    train(ToyTask(), cfg(steps=10), tmp_path / "run")
    path = tmp_path / "run" / STATE_DIR / "config.json"
    meta = json.loads(path.read_text())
    del meta["train"]["optimizer"]
    path.write_text(json.dumps(meta))
    assert train(ToyTask(), cfg(steps=12), tmp_path / "run", resume=True).step == 12


def test_a_checkpoint_from_before_a_model_setting_existed_resumes_while_that_setting_is_off(tmp_path):
    class Later(ToyTask):  # the same task once a setting was added, off by default
        def __init__(self, extra):
            super().__init__()
            self.extra = extra

        def config(self):
            return {**super().config(), "model": {"width": 16, "above": self.extra}}

    train(Later(False), cfg(steps=10), tmp_path / "run")
    path = tmp_path / "run" / STATE_DIR / "config.json"
    meta = json.loads(path.read_text())
    del meta["task"]["model"]["above"]  # saved before the setting existed
    path.write_text(json.dumps(meta))
    with pytest.raises(ArtgenError, match="different model/task config"):  # turned on: another model
        train(Later(True), cfg(steps=12), tmp_path / "run", resume=True)
    assert train(Later(False), cfg(steps=12), tmp_path / "run", resume=True).step == 12
    del meta["task"]["model"]["width"]  # a setting that is not one added later: its absence is not presumed off
    path.write_text(json.dumps(meta))
    with pytest.raises(ArtgenError, match="different model/task config"):
        train(Later(False), cfg(steps=14), tmp_path / "run", resume=True)
    meta["task"]["model"]["width"] = 16
    meta["task"]["model"]["gone"] = 1  # a setting the saved run had and this one lacks: another model
    path.write_text(json.dumps(meta))
    with pytest.raises(ArtgenError, match="different model/task config"):
        train(Later(False), cfg(steps=14), tmp_path / "run", resume=True)
