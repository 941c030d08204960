"""The training loop: objective aggregation, presets on the tiny model, restart, skip, resume."""

from __future__ import annotations

import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from recap.config import load_config
from recap.config.presets import PRESETS, preset_recipe
from recap.models.tiny import TinyConfig, build_tiny_model
from recap.rewards import REWARDS, register_reward
from recap.tasks.prompts import render_prompt
from recap.tasks.registry import make_task
from recap.training import step as step_module
from recap.training.objectives import MicroBatch, Rollouts, SFTBatch
from recap.training.step import StepObjectives, train_step
from recap.training.tracking import TIMING_PREFIX
from recap.training.trainer import _setup, train

SRC = str(Path(__file__).parents[1] / "src")
TESTS = str(Path(__file__).parent)

LETTERS = ["domains.arith.rewards=[think_format, test_letters]",
           "domains.ground.rewards=[answer_format, test_letters]"]


def register_test_reward() -> None:
    """A reward a random tiny model scores unevenly (the built-in ones are all 0 for it), so the
    advantages, the RL gradient and RECAP's weights all move in the runs below."""
    if "test_letters" not in REWARDS:
        register_reward("test_letters")(
            lambda completion, record: sum(c.isalpha() for c in completion)
            / max(len(completion), 1))


@pytest.fixture(scope="module", autouse=True)
def letters_reward():
    register_test_reward()
    yield
    REWARDS.pop("test_letters", None)  # other modules check the exact registry




@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    small = TinyConfig(hidden_size=64, num_layers=2, intermediate_size=128)
    return build_tiny_model(tmp_path_factory.mktemp("tiny"), small, seed=0)


def tiny_overrides(model: Path, out: Path, preset: str, steps: int = 2) -> list[str]:
    """Keep runs tiny: 2 prompts, G = 2, 8 new tokens, 4 records per domain."""
    domains = [f"domains.{d['name']}.n=4" for d in preset_recipe(preset)["domains"]]
    return [f"model.path={model}", f"output_dir={out}", f"train.steps={steps}",
            "train.batch_size=2", "rl.num_generations=2", "rl.max_new_tokens=8",
            "logging.progress=false", "logging.tensorboard=false",
            "checkpoint.export_model=false", *domains]


def rows(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


# ---- objective aggregation with a fake policy (no model) -------------------------------------


class FakePolicy:
    """completion_logprobs returns a trainable tensor; sft_loss a fixed (loss, accuracy)."""

    def __init__(self) -> None:
        self.model = torch.nn.Linear(1, 1)
        self.logp = torch.nn.Parameter(torch.zeros(2, 2))
        self.model.register_parameter("logp", self.logp)

    def completion_logprobs(self, gen):
        return self.logp * 1.0

    def sft_loss(self, records, prompts, targets):
        return self.logp.sum() * 0 + 2.5, torch.tensor(0.4)


def _rollouts(domain, advantages, ref_shift):
    zeros = torch.zeros(2, 2)
    return Rollouts(domain, [], None, ["", ""], torch.ones(2, 2), zeros,
                    zeros + ref_shift, {}, {k: torch.tensor(v) for k, v in advantages.items()}, {})


def test_objectives_average_each_reward_over_the_domains_that_carry_it():
    micro = MicroBatch(
        rollouts=[_rollouts("math", {"accuracy": [1.0, 1.0], "think_format": [0.0, 2.0]}, 0.0),
                  _rollouts("ground", {"accuracy": [0.5, 0.5], "iou": [-1.0, -1.0]}, 1.0)],
        sft={"ocr": SFTBatch([], [], [])},
    )
    out = StepObjectives(FakePolicy(), clip_eps=0.2)(micro)
    # on-policy ratio 1: a domain's surrogate is -mean(A)
    # accuracy: math -1, ground -0.5 -> mean over the 2 domains -0.75
    # think_format only in math: -(0 + 2)/2 = -1 ; iou only in ground: +1
    assert {k: round(float(v.detach()), 6) for k, v in out["losses"].items()} == {
        "accuracy": -0.75, "think_format": -1.0, "iou": 1.0, "sft:ocr": 2.5}
    # KL: math 0 (ref = pi); ground log(pi_ref/pi) = 1: e - 1 - 1 = 0.71828 ; mean 0.35914
    assert float(out["kl"]) == pytest.approx((0.0 + (torch.e - 2.0)) / 2, abs=1e-5)
    assert float(out["sft_acc"]["sft:ocr"]) == pytest.approx(0.4)


# ---- the loop on the tiny model ----------------------------------------------------------


@pytest.mark.parametrize("preset", list(PRESETS))
def test_every_preset_runs_two_steps(preset, tiny, tmp_path):
    cfg = load_config(None, tiny_overrides(tiny, tmp_path / preset, preset), preset=preset)
    out = train(cfg)
    got = rows(out)
    assert [r["step"] for r in got] == [1, 2]
    for name in cfg.objective_names:  # every objective has a weight each step
        assert all(f"lambda/{name}" in r for r in got)
    assert got[0]["beta"] == pytest.approx(cfg.kl.beta if cfg.kl.schedule == "constant" else
                                           {"none": 0.0, "grpo_d": 0.07}.get(cfg.kl.schedule, 0))
    if preset == "grpo-d":  # 2 steps: t = 1, so the last step is at beta_max
        assert got[1]["beta"] == pytest.approx(0.1)
    assert all(r["skipped"] == 0 and r["lr"] > 0 for r in got)
    assert (out / "final" / "config.json").exists()
    assert (out / "checkpoints" / "step-000002" / "trainer_state.json").exists()


def test_restart_resets_optimizer_state_and_reference(tiny, tmp_path):
    out = tmp_path / "restart"
    overrides = [*tiny_overrides(tiny, out, "grpo-restart", steps=3),
        "restart.every_epochs=null", "restart.every_steps=2", "checkpoint.every=1",
        "checkpoint.keep_last=3"]
    train(load_config(None, overrides, preset="grpo-restart"))
    assert [r["restarts"] for r in rows(out)] == [0, 0, 1]
    ckpt = out / "checkpoints"
    # optimiser state was cleared before step 3: Adam's step counter restarted at 1
    state2 = torch.load(ckpt / "step-000002" / "optimizer.bin", weights_only=False)["state"]
    state3 = torch.load(ckpt / "step-000003" / "optimizer.bin", weights_only=False)["state"]
    assert {float(s["step"]) for s in state2.values()} == {2.0}
    assert {float(s["step"]) for s in state3.values()} == {1.0}
    # the reference became the policy as it was after step 2
    policy2 = load_file(ckpt / "step-000002" / "model.safetensors")
    reference3 = load_file(ckpt / "step-000003" / "reference.safetensors")
    assert set(reference3) == {k.removeprefix("model.") for k in policy2}
    assert all(torch.equal(reference3[k.removeprefix("model.")], v) for k, v in policy2.items())
    assert not (ckpt / "step-000002" / "reference.safetensors").exists()  # still the base


@pytest.mark.parametrize("weighting", ["equal", "famo"])
def test_non_finite_loss_skips_the_step(weighting, tiny, tmp_path, monkeypatch):
    cfg = load_config(None, [*tiny_overrides(tiny, tmp_path / "nan", "sft-gt"),
                             f"weighting.name={weighting}"], preset="sft-gt")
    run = _setup(cfg, resume=False)
    before = [p.detach().clone() for p in run.policy.model.parameters()]
    real = step_module.mean_over_domains
    monkeypatch.setattr(step_module, "mean_over_domains",
                        lambda d: {k: v * float("nan") for k, v in real(d).items()})
    row = train_step(run)
    assert row["skipped"] == 1 and run.skipped == 1
    assert all(torch.equal(a, b) for a, b in zip(before, run.policy.model.parameters(),
                                                 strict=True))
    monkeypatch.setattr(step_module, "mean_over_domains", real)
    run.step += 1
    assert train_step(run)["skipped"] == 1  # the counter stays, the step goes through
    run.step += 1
    assert train_step(run)["skipped"] == 1  # FAMO's post_step after a skipped step: no error
    assert not all(torch.equal(a, b) for a, b in zip(before, run.policy.model.parameters(),
                                                     strict=True))
    run.log.close()


def test_existing_run_needs_resume(tiny, tmp_path):
    cfg = load_config(None, tiny_overrides(tiny, tmp_path / "run", "sft-gt", steps=1),
                      preset="sft-gt")
    train(cfg)
    with pytest.raises(FileExistsError, match="resume"):
        train(cfg)


def _deterministic(r: dict) -> dict:
    return {k: v for k, v in r.items() if not k.startswith(TIMING_PREFIX)}


def test_resume_after_sigkill_reproduces_the_uninterrupted_run(tiny, tmp_path):
    # RECAP weights (W = 1 so they move), a reference KL and a restart: all state must come back
    preset, steps = "lwf", 5
    extra = [*LETTERS, "weighting.name=recap", "weighting.window=1", "restart.every_steps=3",
             "train.batch_per=domain", "train.batch_size=1"]
    straight = tmp_path / "straight"
    train(load_config(None, tiny_overrides(tiny, straight, preset, steps) + extra, preset=preset))

    killed = tmp_path / "killed"
    overrides = tiny_overrides(tiny, killed, preset, steps) + extra + ["checkpoint.every=1"]
    script = ("import sys, torch; torch.set_num_threads(1)\n"
              f"sys.path.insert(0, {TESTS!r}); import test_trainer\n"
              "test_trainer.register_test_reward()\n"
              "from recap.config import load_config\nfrom recap.training.trainer import train\n"
              f"train(load_config(None, {overrides!r}, preset={preset!r}))\n")
    env = {**os.environ, "PYTHONPATH": SRC}
    proc = subprocess.Popen([sys.executable, "-c", script], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    first = killed / "checkpoints" / "step-000001" / "trainer_state.json"
    deadline = time.monotonic() + 240
    while not first.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert first.exists(), proc.stderr.read().decode()[-2000:] if proc.poll() else "timeout"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "final").exists()  # really interrupted mid-run

    cfg = load_config(None, overrides, preset=preset)
    train(cfg, resume=True)
    expected, got = rows(straight), rows(killed)
    assert [r["step"] for r in got] == list(range(1, steps + 1))
    assert got[-1]["restarts"] == 1
    # the runs really exercise the state: RECAP's weights left 1 and the KL is non-zero
    assert any(abs(r["lambda/test_letters"] - 1.0) > 1e-3 for r in expected)
    assert any(r.get("kl", 0.0) > 0 for r in expected)
    for a, b in zip(expected, got, strict=True):
        a, b = _deterministic(a), _deterministic(b)
        assert a.keys() == b.keys()
        for key in a:
            assert b[key] == pytest.approx(a[key], rel=1e-6, abs=1e-6), (a["step"], key)


DDP_SCRIPT = """
import json, sys, torch
torch.set_num_threads(1)
sys.path.insert(0, {tests!r})
import test_trainer
test_trainer.register_test_reward()
from recap.config import load_config
from recap.training.step import train_step
from recap.training.trainer import _setup
run = _setup(load_config(None, {overrides!r}, preset="recap"), resume=False)
for _ in range(2):
    run.log.write(train_step(run))
    run.step += 1
run.log.close()
params = [float(p.double().sum()) for p in run.policy.model.parameters()]
rank = run.acc.process_index
with open({out!r} + f"/rank{{rank}}.json", "w") as f:
    json.dump({{"params": params, "lambda": run.weighting.weights,
               "ids": [r.id for v in run.sampler.next_batch().values() for r in v]}}, f)
"""


@pytest.mark.slow
def test_two_gloo_processes_stay_in_sync(tiny, tmp_path):
    """Data parallel on CPU (torchrun + gloo): different data per rank, identical weights."""
    out = tmp_path / "ddp"
    overrides = [*tiny_overrides(tiny, out, "recap"), *LETTERS, "weighting.window=1",
                 "train.batch_per=domain", "train.batch_size=1"]
    script = DDP_SCRIPT.format(tests=TESTS, overrides=overrides, out=str(out))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": SRC, "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_port", str(port), "--no-python", sys.executable, "-c", script]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["ids"] != ranks[1]["ids"]  # each process reads its own slice of the data
    assert ranks[0]["params"] == ranks[1]["params"]  # gradients were averaged across processes
    assert ranks[0]["lambda"] == ranks[1]["lambda"]  # signals were gathered before update()
    assert [r["step"] for r in rows(out)] == [1, 2]  # one metrics file, from the main process


@pytest.mark.parametrize("changes", [
    ["weighting.name=uw"],
    ["weighting.name=famo"],
    ["weighting.name=dwa", "train.grad_accum=2"],
    ["weighting.name=rlw", "model.lora={r: 4, alpha: 8}"],
], ids=["uw", "famo", "dwa-accum", "rlw-lora"])
def test_weighting_variants_train(changes, tiny, tmp_path):
    out = tmp_path / "variant"
    overrides = [*tiny_overrides(tiny, out, "recap"), *LETTERS, "train.batch_per=domain",
                 "train.batch_size=1", "weighting.window=null", "weighting.temperature=null",
                 "weighting.variant=eq1",
                 *changes]
    cfg = load_config(None, overrides, preset="recap")
    train(cfg)
    got = rows(out)
    assert [r["skipped"] for r in got] == [0, 0]
    for r in got:  # every objective was present (batch_per=domain) and got a weight
        assert set(cfg.objective_names) == {k.removeprefix("signal/") for k in r
                                            if k.startswith("signal/")}
        assert sum(r[f"lambda/{k}"] for k in cfg.objective_names) == pytest.approx(
            len(cfg.objective_names))  # weights have mean 1
    if "train.grad_accum=2" in changes:  # SFT accuracy measured before the first backward
        assert all("signal/sft:digits" in r for r in got)


def test_latest_checkpoint_ignores_partial_directories(tmp_path):
    from recap.training.checkpoint import latest_checkpoint

    root = tmp_path / "checkpoints"
    for name, complete in [("step-000002", True), ("step-000010", True),
                           ("step-000011", False), (".tmp-step-000012", True)]:
        (root / name).mkdir(parents=True)
        if complete:
            (root / name / "trainer_state.json").write_text("{}")
    # step-000011 has no state file (not written by save_checkpoint); .tmp-* is never final
    assert latest_checkpoint(tmp_path).name == "step-000010"  # numeric, not lexical, order
    assert latest_checkpoint(tmp_path / "nothing") is None


@pytest.mark.parametrize("updates", [1, 2])
def test_several_updates_per_batch_of_rollouts(updates, tiny, tmp_path):
    """mu updates: mu optimiser steps on one batch of rollouts with pi_old fixed, so the ratio
    leaves 1 and the clip acts from the second update on; lambda is updated once per batch."""
    out = tmp_path / f"mu{updates}"
    cfg = load_config(None, [*tiny_overrides(tiny, out, "recap", steps=1), *LETTERS,
                             f"rl.updates={updates}", "optim.lr=0.05", "optim.warmup_fraction=0",
                             "rl.max_new_tokens=16", "checkpoint.every=1"], preset="recap")
    train(cfg)
    ckpt = out / "checkpoints" / "step-000001"
    state = torch.load(ckpt / "optimizer.bin", weights_only=False)["state"]
    assert {float(s["step"]) for s in state.values()} == {float(updates)}
    history = json.loads((ckpt / "trainer_state.json").read_text())["weighting"]["history"]
    assert {len(h) for h in history.values() if h} == {1}  # one signal per batch, not per update
    clip, drift = rows(out)[-1]["clip_frac"], rows(out)[-1]["sample_kl"]
    assert clip == 0.0 if updates == 1 else clip > 0.0
    # sampler and trainer agree on the first update (float round-off); the second has moved
    assert drift < 1e-6 if updates == 1 else drift > 1e-4


@pytest.mark.parametrize("weighting", ["recap", "uw"])
def test_chunked_backward_gives_the_one_pass_gradient(weighting, tiny, tmp_path, monkeypatch):
    """train.backward_prompts: RL rows back-propagated one prompt at a time give the gradient
    of the one-pass backward (policy and a learnable weighting's parameters), hybrid RL + SFT."""
    grads = {}
    original = step_module._optimizer_step

    def record(run, ok):
        params = [p for g in run.optimizer.param_groups for p in g["params"]]
        grads[run.cfg.output_dir] = [p.grad.clone() for p in params if p.grad is not None]
        return original(run, ok)

    monkeypatch.setattr(step_module, "_optimizer_step", record)
    chunk_calls = []
    forward = StepObjectives.forward

    def spy(self, micro, rows=None, logprobs=None):
        chunk_calls.append(rows is not None)
        return forward(self, micro, rows, logprobs)

    monkeypatch.setattr(StepObjectives, "forward", spy)
    extra = ["weighting.name=uw", "weighting.window=null", "weighting.temperature=null",
             "weighting.variant=eq1"] if weighting == "uw" else []
    for chunked in (False, True):
        out = tmp_path / f"chunked-{chunked}"
        cfg = load_config(None, [*tiny_overrides(tiny, out, "recap", steps=1), *LETTERS, *extra,
                                 "train.batch_size=3", "rl.max_new_tokens=12",
                                 *(["train.backward_prompts=1"] if chunked else [])],
                          preset="recap")
        train(cfg)
    one, chunked = grads.values()
    assert sum(chunk_calls) >= 4  # two passes over at least two chunks
    assert len(one) == len(chunked) > 0
    for a, b in zip(one, chunked, strict=True):
        assert torch.allclose(a, b, atol=1e-5, rtol=1e-4)
    assert any(float(a.abs().max()) > 1e-3 for a in one)  # a real gradient, not zeros


def test_kept_prefill_changes_no_number_of_a_step(tiny, tmp_path, monkeypatch):
    """One forward per batch of rollouts: the sampling's prompt pass serves the loss forward
    (``keep_prefill``), and the step's gradient is the one of a step that encodes the prompts
    again, to the bit; with gradient accumulation it is not asked for."""
    from recap.models.policy import Policy

    grads, kept = {}, []
    original_step, original_generate = step_module._optimizer_step, Policy.generate

    def record(run, ok):
        params = [p for g in run.optimizer.param_groups for p in g["params"]]
        grads[run.cfg.output_dir] = [p.grad.clone() for p in params if p.grad is not None]
        return original_step(run, ok)

    def spy(self, *args, keep_prefill=False, **kwargs):
        gen = original_generate(self, *args, keep_prefill=keep_prefill, **kwargs)
        kept.append(gen.prefill is not None)
        return gen

    monkeypatch.setattr(step_module, "_optimizer_step", record)
    monkeypatch.setattr(Policy, "generate", spy)
    for name, extra in (("kept", []), ("again", []), ("accumulated", ["train.grad_accum=2"])):
        if name == "again":
            monkeypatch.setattr(step_module, "_one_forward_per_rollout", lambda run: False)
        cfg = load_config(None, [*tiny_overrides(tiny, tmp_path / name, "recap", steps=1),
                                 *LETTERS, *extra], preset="recap")
        train(cfg)
        assert all(kept) == (name == "kept") and any(kept) == (name == "kept")
        kept.clear()
    one, again = grads[str(tmp_path / "kept")], grads[str(tmp_path / "again")]
    assert len(one) == len(again) > 0
    for a, b in zip(one, again, strict=True):
        assert torch.equal(a, b)


def test_reward_workers_score_as_the_training_process_does(tiny, tmp_path):
    """rl.reward_workers: built-in rewards scored in a worker process, a test-registered one in
    process; the run's rewards, losses and lambda equal the in-process run's."""
    results = []
    for workers in (0, 1):
        out = tmp_path / f"workers-{workers}"
        cfg = load_config(None, [*tiny_overrides(tiny, out, "recap", steps=2), *LETTERS,
                                 f"rl.reward_workers={workers}"], preset="recap")
        train(cfg)
        results.append(rows(out))
    serial, pooled = results
    for a, b in zip(serial, pooled, strict=True):
        keys = [k for k in a if k.startswith(("reward/", "loss", "lambda/"))]
        assert keys and {k: a[k] for k in keys} == {k: b[k] for k in keys}
    assert all(r["rewards/timeouts"] == 0 for r in pooled)


def test_example_logliks_hand_computed():
    from types import SimpleNamespace

    from recap.training.probe import example_logliks

    logp = torch.tensor([[-0.5, -1.0, -7.0], [-2.0, -9.0, -9.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]])  # padding (mask 0) must not count
    calls = []

    def target_logprobs(records, prompts, targets):
        calls.append(len(records))
        rows = slice(0, 1) if records == ["a"] else slice(1, 2)
        return logp[rows], mask[rows], None

    policy = SimpleNamespace(target_logprobs=target_logprobs)
    assert example_logliks(policy, ["a", "b"], ["p", "q"], ["x", "y"], batch_size=1) == [-1.5,
                                                                                           -2.0]
    assert calls == [1, 1]


def test_probe_logs_each_examples_loglik_and_its_change(tiny, tmp_path):
    """eval.probe_every: the probe's log-likelihoods before training and after each step, their
    per-example changes, the per-domain means in metrics.jsonl and the report's probe.png."""
    from recap.evaluation.report import training_figures
    from recap.models.loading import load_policy
    from recap.tasks.prompts import render_prompt, render_target
    from recap.tasks.registry import make_task
    from recap.training.probe import example_logliks

    out = tmp_path / "probe"
    cfg = load_config(None, [*tiny_overrides(tiny, out, "recap", steps=2), *LETTERS,
                             "eval.probe_every=1", "eval.probe_n=2", "optim.lr=0.01",
                             "eval.probe_tasks=[count, digits]",
                             "optim.warmup_fraction=0"], preset="recap")
    train(cfg)
    log = [json.loads(line) for line in (out / "probe.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [0, 1, 2] and log[0]["delta"] is None
    # every built-in domain, plus the extra task the recipe does not train (digits is a domain)
    assert list(log[0]["loglik"]) == [d.name for d in cfg.domains if d.builtin] + ["count"]
    for before, after in itertools.pairwise(log):
        for name, values in after["loglik"].items():
            assert after["delta"][name] == pytest.approx(
                [a - b for a, b in zip(values, before["loglik"][name], strict=True)])
    assert any(abs(d) > 1e-4 for r in log[1:] for v in r["delta"].values() for d in v)
    d = next(x for x in cfg.domains if x.builtin)  # the baseline is the base model's value
    recs = make_task(d.source, "test", 2, seed=cfg.train.seed, **d.knobs)
    base = example_logliks(load_policy(tiny), recs, [render_prompt(r, d.template) for r in recs],
                           [render_target(r, d.template) for r in recs])
    assert log[0]["loglik"][d.name] == pytest.approx(base, abs=1e-4)
    metrics = rows(out)
    assert metrics[-1][f"probe/{d.name}/delta"] == pytest.approx(
        sum(log[-1]["delta"][d.name]) / 2)
    figures = training_figures({"run": metrics}, tmp_path)
    assert tmp_path / "probe.png" in figures


def test_in_run_evaluation_scores_the_held_out_records_as_the_evaluator_does(tiny, tmp_path):
    """eval.every: greedy completions of each RL domain's held-out records scored by its rewards
    (the evaluator's generation and scoring, so format/length/truncation come along) and SFT
    domains' token accuracy, after each N steps."""
    from recap.evaluation.metrics import reward_scores
    from recap.models import load_policy

    out = tmp_path / "eval"
    cfg = load_config(None, [*tiny_overrides(tiny, out, "recap", steps=2), *LETTERS,
                             "eval.every=1", "eval.n=3", "checkpoint.export_model=true"],
                      preset="recap")
    train(cfg)
    evals = [json.loads(x) for x in (out / "eval.jsonl").read_text().splitlines()]
    assert [r["step"] for r in evals] == [1, 2]
    rl = next(d for d in cfg.domains if d.mode == "rl")
    sft = next(d for d in cfg.domains if d.mode == "sft")
    keys = {f"eval/{rl.name}/{k}" for k in [*rl.rewards, "format", "response_length",
                                             "truncated"]}
    assert keys <= set(evals[-1]) and f"eval/{sft.name}/sft_acc" in evals[-1]
    # the last row is the final model's greedy score on the same held-out records
    records = make_task(rl.source, "test", 3, seed=cfg.train.seed, **rl.knobs)
    policy = load_policy(out / "final")
    gen = policy.generate(records, [render_prompt(r, rl.template) for r in records],
                          num_samples=1, temperature=0.0, max_new_tokens=cfg.rl.max_new_tokens)
    scores = reward_scores({"test_letters": "test_letters"}, gen.texts, records)
    assert evals[-1][f"eval/{rl.name}/test_letters"] == pytest.approx(
        sum(scores["test_letters"]) / 3, abs=1e-6)
