"""recap inside trl.GRPOTrainer: reward weights, replay rewards, SFT term, resume.

The VLM runs go through TRL's own multimodal path with builtin:base (image-only processor, no
torchvision); a text-only tiny causal LM goes through its text path.
"""

import json
import math
import os
import signal
import subprocess
import sys
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from transformers import TrainerCallback
from trl import GRPOConfig, GRPOTrainer

from recap.config import load_config
from recap.integrations.trl import (
    RecapGRPOTrainer,
    RecapRewardWeights,
    domain_reward,
    generation_kwargs,
    load_processor,
    replay_data,
)
from recap.models.loading import resolve_model_path
from recap.training.objectives import reward_weighted_advantages
from recap.training.sampler import DomainSampler
from recap.training.trainer import train
from recap.weighting import build_weighting

RECIPE = "configs/quickstart-recap.yaml"
# The authors' RECAP moves its weights from the second step on (no warm-up), so a short run
# exercises non-trivial lambda; 4 prompts x G = 2 keeps it fast.
SMALL = ["train.steps=4", "train.batch_size=4", "rl.num_generations=2", "rl.max_new_tokens=24",
         "weighting.variant=official", "weighting.apply=rewards"]


def _args(out, steps=4, shuffle=False, **kw):
    path = resolve_model_path("builtin:base")
    return GRPOConfig(output_dir=str(out), per_device_train_batch_size=8, num_generations=2,
                      max_completion_length=24, max_steps=steps, learning_rate=2e-4, beta=0.0,
                      shuffle_dataset=shuffle, logging_steps=1, report_to=[], use_cpu=True, seed=0,
                      generation_kwargs=generation_kwargs(path), disable_tqdm=True,
                      save_strategy="steps", save_steps=2, bf16=False,
                      gradient_checkpointing=False, **kw)


class Recorder(TrainerCallback):
    """Per step: the reward weights the step's rollouts were scored with, and TRL's logs."""

    def __init__(self, trainer):
        self.trainer, self.steps = trainer, []

    def on_step_begin(self, args, state, control, **kw):
        self.weights = self.trainer.reward_weights.clone()

    def on_step_end(self, args, state, control, **kw):
        logs = self.trainer._logs
        self.steps.append({"weights": self.weights,
                           "rewards": {k: list(v) for k, v in logs["rewards"].items()},
                           "advantages": list(logs["advantages"])})


def _trainer(out, data, steps=4):
    path = resolve_model_path("builtin:base")
    trainer = RecapGRPOTrainer(model=path, processing_class=load_processor(path),
                               args=_args(out, steps), replay=data)
    recorder = Recorder(trainer)
    trainer.add_callback(recorder)
    return trainer, recorder


@pytest.fixture(scope="module")
def data():
    return replay_data(RECIPE, SMALL)


@pytest.fixture(scope="module")
def uninterrupted(data, tmp_path_factory):
    torch.manual_seed(0)
    trainer, recorder = _trainer(tmp_path_factory.mktemp("trl-a"), data)
    trainer.train()
    return trainer, recorder


def test_replay_dataset_follows_recaps_sampler(data):
    cfg = data.config
    assert cfg.weighting.apply == "rewards"
    assert data.objectives[-1] == "sft:digits" and "count_think/accuracy" in data.objectives
    assert [f.__name__ for f in data.reward_funcs] == data.objectives[:-1]
    rl = [d for d in cfg.active_domains if d.mode == "rl"]
    from recap.training.build import domain_records
    sampler = DomainSampler({d.name: domain_records(d, 0) for d in rl},
                            {d.name: d.role for d in rl}, strategy="uniform", batch_size=4,
                            batch_per="total", seed=0)
    expected = [(n, r.id) for _ in range(4) for n, rs in sampler.next_batch().items() for r in rs]
    got = [(row["domain"], json.loads(row["record"])["id"]) for row in data.dataset]
    assert got == expected and len({n for n, _ in got}) > 1  # a real mixture, in draw order


def test_domain_reward_scores_its_domain_and_returns_none_elsewhere(data):
    fn = domain_reward("count", "accuracy")
    row = next(r for r in data.dataset if r["domain"] == "count")
    other = next(r for r in data.dataset if r["domain"] == "exists")
    answer = json.loads(row["record"])["answer"]
    completions = [f"<answer>{answer}</answer>",
                   [{"role": "assistant", "content": f"<answer>{answer}</answer>"}],
                   "<answer>none</answer>", "<answer>yes</answer>"]
    out = fn(completions=completions, domain=["count", "count", "count", "exists"],
             record=[row["record"]] * 3 + [other["record"]])
    assert out == [1.0, 1.0, 0.0, None]
    assert fn.__name__ == "count/accuracy"


def test_vlm_run_logs_moving_lambda_and_the_sft_term(uninterrupted):
    trainer, recorder = uninterrupted
    history = [h for h in trainer.state.log_history if "loss" in h]
    assert len(history) == 4
    lambdas = [[h[f"recap/lambda/{k}"] for k in trainer.recap.weighting.objectives]
               for h in history]
    assert lambdas[0] != lambdas[-1]  # the authors' RECAP moved the weights
    assert all(math.isfinite(h["recap/sft_loss/sft:digits"]) for h in history)
    # the weights pushed at the end of a step are the ones the next step's rollouts used
    for h, nxt in zip(history, recorder.steps[1:], strict=False):
        pushed = [h[f"recap/lambda/{k}"] for k in trainer.reward_func_names]
        assert nxt["weights"].tolist() == pytest.approx(pushed, rel=1e-6)


def test_trl_advantages_are_the_group_normalised_weighted_reward_sum(uninterrupted):
    trainer, recorder = uninterrupted
    names = trainer.reward_func_names
    checked = 0
    for step in recorder.steps[1:]:
        weights = dict(zip(names, step["weights"].tolist(), strict=True))
        rewards = torch.tensor([step["rewards"][n] for n in names]).T  # [rows, F]
        adv = torch.tensor(step["advantages"])
        for start in range(0, len(adv), 2):  # G = 2 rows per prompt
            group = rewards[start:start + 2]
            applies = [n for i, n in enumerate(names) if not torch.isnan(group[0, i])]
            per_reward = {n: group[:, names.index(n)].view(1, 2) for n in applies}
            expected = reward_weighted_advantages(per_reward, {n: weights[n] for n in applies},
                                                  eps=1e-4)
            assert adv[start:start + 2].tolist() == pytest.approx(expected.tolist(), abs=1e-5)
            checked += 1
    assert checked == 12 and any(w != 1.0 for s in recorder.steps[1:] for w in s["weights"])


KILLED_RUN = '''
import sys, time, torch
sys.path.insert(0, {tests!r})
torch.set_num_threads(1)
from transformers import TrainerCallback
import test_trl as t

class Hang(TrainerCallback):  # after step 2's checkpoint is on disk: wait to be killed
    def on_save(self, args, state, control, **kw):
        if state.global_step == 2:
            print("saved", flush=True)
            time.sleep(600)

torch.manual_seed(0)
trainer, _ = t._trainer({out!r}, t.replay_data(t.RECIPE, t.SMALL))
trainer.add_callback(Hang())
trainer.train()
'''


def test_run_killed_after_a_checkpoint_resumes_with_the_same_weights(data, uninterrupted,
                                                                     tmp_path):
    """kill -9 a TRL run after its step-2 checkpoint; resumed, it ends where the
    uninterrupted run ends: the same weighting state, reward weights and rollouts."""
    trainer_a, recorder_a = uninterrupted
    script = KILLED_RUN.format(tests=str(Path(__file__).parent), out=str(tmp_path))
    child = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        saved = any(line.strip() == "saved" for line in child.stdout)  # TRL logs print too
        assert saved, "the child ended before its step-2 checkpoint"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert (tmp_path / "checkpoint-2" / "trainer_state.json").is_file()
    torch.manual_seed(123)  # the checkpoint's RNG state must win
    second, recorder_b = _trainer(tmp_path, data)
    second.train(resume_from_checkpoint=True)
    assert second.recap.weighting.state_dict() == trainer_a.recap.weighting.state_dict()
    assert second.reward_weights.tolist() == trainer_a.reward_weights.tolist()
    assert recorder_b.steps[-1]["advantages"] == recorder_a.steps[-1]["advantages"]


def test_lambda_trajectory_equals_recaps_own_trainer(tmp_path):
    """Fed recap's per-step reward means (and SFT losses), the callback's lambda are recap's."""
    cfg = load_config(RECIPE, [*SMALL, f"output_dir={tmp_path / 'recap'}"])
    rows = [json.loads(line) for line in
            (train(cfg) / "metrics.jsonl").read_text().splitlines()]
    objectives = cfg.objective_names

    stub = SimpleNamespace(  # what the callback reads and writes on a GRPOTrainer
        reward_func_names=[k for k in objectives if not k.startswith("sft:")], _metrics={},
        args=SimpleNamespace(restore_callback_states_from_checkpoint=False),
        add_callback=lambda cb: None)
    callback = RecapRewardWeights.attach(stub, cfg)
    for row in rows:
        stub._metrics["train"] = defaultdict(list)  # TRL clears its metrics at every log
        for name in stub.reward_func_names:
            if f"signal/{name}" in row:
                stub._metrics["train"][f"rewards/{name}/mean"].append(row[f"signal/{name}"])
        if "signal/sft:digits" in row:  # digits drawn this step (the official RECAP: the loss)
            callback.observe_sft({"sft:digits": row["signal/sft:digits"]}, {"sft:digits": 0.0})
        callback.on_step_end(None, None, None)
        assert callback.weighting.weights == pytest.approx(
            {k: row[f"lambda/{k}"] for k in objectives}, rel=1e-12)
    assert any(abs(row[f"lambda/{k}"] - 1) > 1e-3 for row in rows for k in objectives)


def test_callback_refuses_what_it_cannot_drive(data, tmp_path):
    path = resolve_model_path("builtin:base")
    trainer = GRPOTrainer(model=path, processing_class=load_processor(path),
                          args=_args(tmp_path), train_dataset=data.dataset,
                          reward_funcs=data.reward_funcs)
    with pytest.raises(ValueError, match="learns parameters"):
        RecapRewardWeights.attach(trainer, build_weighting("uw", data.objectives))
    with pytest.raises(ValueError, match="no objective for reward function"):
        RecapRewardWeights.attach(trainer, build_weighting("equal", ["count/accuracy"]))
    callback = RecapRewardWeights.attach(trainer, data.config)  # an unchanged GRPOTrainer
    assert trainer.reward_weights.tolist() == [1.0] * len(trainer.reward_func_names)

    class State:
        global_step, stateful_callbacks = 2, {}

    with pytest.raises(ValueError, match="without RecapRewardWeights state"):
        callback.on_train_begin(None, State(), None)
    with pytest.raises(ValueError, match="shuffle_dataset=False"):
        RecapGRPOTrainer(model=path, processing_class=load_processor(path),
                         args=_args(tmp_path, shuffle=True), replay=data)


@pytest.fixture(scope="module")
def text_recipe(text_lm_dir, tmp_path_factory):
    """A recipe on the text-only tiny LM with two text domains read from JSONL."""
    root = tmp_path_factory.mktemp("text")
    for name, op in (("sums", "+"), ("diffs", "-")):
        with (root / f"{name}.jsonl").open("w") as f:
            for i in range(16):
                a, b = 9 + i, i % 5
                f.write(json.dumps({"id": f"{name}{i}", "question": f"{a}{op}{b}?",
                                    "answer": str(eval(f"{a}{op}{b}")),
                                    "answer_type": "number"}) + "\n")
    domains = [{"name": n, "source": {"path": str(root / f"{n}.jsonl"),
                                      "options": {"require_image": False}},
                "role": role, "mode": "rl", "template": "answer",
                "rewards": ["answer_format", "accuracy"]}
               for n, role in (("sums", "reasoning"), ("diffs", "general"))]
    recipe = {"model": {"path": str(text_lm_dir)}, "domains": domains,
              "sampling": {"strategy": "uniform"},
              "weighting": {"name": "recap", "variant": "official", "apply": "rewards"},
              "train": {"steps": 3, "batch_size": 4, "batch_per": "total"}}
    (root / "recipe.yaml").write_text(json.dumps(recipe))
    return root


def test_text_only_causal_lm(text_recipe, text_lm_dir, tmp_path):
    data = replay_data(text_recipe / "recipe.yaml")
    assert "images" not in data.dataset.column_names
    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=8, num_generations=2,
                      max_completion_length=12, max_steps=3, learning_rate=1e-3, beta=0.0,
                      shuffle_dataset=False, logging_steps=1, report_to=[], use_cpu=True,
                      seed=0, disable_tqdm=True, save_strategy="no", bf16=False,
                      gradient_checkpointing=False)
    trainer = RecapGRPOTrainer(model=str(text_lm_dir),
                               processing_class=load_processor(text_lm_dir),
                               args=args, replay=data)
    trainer.train()
    history = [h for h in trainer.state.log_history if "loss" in h]
    assert len(history) == 3
    assert {f"recap/lambda/{k}" for k in data.objectives} <= set(history[-1])
    state = trainer.recap.weighting.state_dict()
    assert state["steps"] == 3  # one update per optimiser step
    for name in data.objectives:  # each reward's per-step means, None rows left out
        means = [h[f"rewards/{name}/mean"] for h in history
                 if h.get(f"rewards/{name}/mean") is not None]
        assert state["history"][name] == pytest.approx(means[-len(state["history"][name]):])
