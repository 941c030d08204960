"""The base-model build: deterministic data, schedule, and exact resume."""

import json
import math
import warnings

import pytest
import torch
from safetensors.torch import load_file

import recap.pretraining.object_head as object_head_module
from recap.evaluation.report import load_run_metrics
from recap.models.loading import BASE_CHECKPOINT
from recap.pretraining import (
    PretrainConfig,
    Stage,
    batch_loss,
    changed_fields,
    object_head_loss,
    object_head_outputs,
    pretrain,
    run_folder,
    sample_batch,
)
from recap.pretraining.loop import _lr_at
from recap.tasks.registry import make_task
from recap.tasks.shapes import COLORS, SHAPES
from recap.training.checkpoint import STATE_FILE, latest_checkpoint, list_checkpoints

SMALL = {"hidden_size": 32, "num_layers": 1, "intermediate_size": 64}


def small_config(**kw) -> PretrainConfig:
    # No curriculum: its stages are fractions of `steps`, and the resume test below changes
    # `steps` between the cut and the resumed build. No annealing phase unless asked for.
    base = dict(steps=4, batch_size=4, warmup_steps=4, eval_every=1000, eval_n=2, save_every=2,
                final_eval_n=2, model_config=SMALL, curriculum=[], anneal_steps=0)
    return PretrainConfig(**{**base, **kw})


def test_batches_are_a_function_of_seed_and_step():
    cfg = small_config(batch_size=8)
    a, ta = sample_batch(cfg, 3)
    b, tb = sample_batch(cfg, 3)
    c, _ = sample_batch(cfg, 4)
    assert [r.id for r in a] == [r.id for r in b] and ta == tb
    assert [r.id for r in a] != [r.id for r in c]
    # arith carries worked solutions, so it trains on the think template; the rest on answer.
    assert all((t == "think") == (r.domain == "arith") for r, t in zip(a, ta, strict=True))


def test_curriculum_stages_set_the_knobs_of_their_steps():
    easy = {"n_objects": (1, 1), "obj_size": (20, 20)}
    cfg = small_config(steps=10, batch_size=12, curriculum=[
        Stage(until=0.5, knobs={"count": easy, "exists": easy}, weights={"arith": 0.0}),
    ])
    early, _ = sample_batch(cfg, 4)
    late, _ = sample_batch(cfg, 5)
    scene = [r for r in early if r.domain in ("count", "exists")]
    assert scene and all(len(r.meta["objects"]) == 1 for r in scene)
    assert all(o["box"][2] - o["box"][0] == 20 for r in scene for o in r.meta["objects"])
    assert not any(r.domain == "arith" for r in early)
    assert any(len(r.meta["objects"]) > 1 for r in late if r.domain in ("count", "exists"))


def test_default_recipe_ends_on_the_evaluated_distribution():
    cfg = PretrainConfig()
    records, _ = sample_batch(cfg, cfg.steps - 1)
    assert {r.domain for r in records} >= {"count", "ground", "digits"}
    # Last stage = generator defaults: scenes of 9-15 px objects, as evaluation draws them.
    sizes = [max(o["box"][2] - o["box"][0], o["box"][3] - o["box"][1])
             for r in records if "objects" in r.meta for o in r.meta["objects"]]
    assert sizes and max(sizes) <= 15


def test_batch_loss_equals_the_whole_batch_token_mean():
    from recap.models import load_policy
    from recap.tasks import render_prompt, render_target

    policy = load_policy("builtin:base")
    records, templates = sample_batch(small_config(batch_size=6), 0)
    prompts = [render_prompt(r, t) for r, t in zip(records, templates, strict=True)]
    targets = [render_target(r, t) for r, t in zip(records, templates, strict=True)]
    with torch.no_grad():
        whole, acc = policy.sft_loss(records, prompts, targets)
        split, split_acc = batch_loss(policy, records, templates)
    assert len({r.domain for r in records}) > 1
    torch.testing.assert_close(split, whole, rtol=1e-5, atol=1e-6)
    assert split_acc == pytest.approx(float(acc))


def test_record_average_weighs_every_record_equally():
    from recap.models import load_policy
    from recap.tasks import render_prompt, render_target

    policy = load_policy("builtin:base")
    records, templates = sample_batch(small_config(batch_size=6), 0)
    per_record = []
    with torch.no_grad():
        for r, t in zip(records, templates, strict=True):
            loss, _ = policy.sft_loss([r], [render_prompt(r, t)], [render_target(r, t)])
            per_record.append(loss)
        mean, _ = batch_loss(policy, records, templates, average="record")
        token, _ = batch_loss(policy, records, templates, average="token")
    torch.testing.assert_close(mean, torch.stack(per_record).mean(), rtol=1e-5, atol=1e-6)
    assert not torch.isclose(mean, token)  # answers of different lengths: the two differ
    with pytest.raises(ValueError, match="record"):
        batch_loss(policy, records, templates, average="sample")


def test_learning_rate_warms_up_then_decays_to_the_floor():
    cfg = PretrainConfig(steps=100, warmup_steps=10, lr=1e-3, min_lr_ratio=0.1, anneal_steps=0)
    assert _lr_at(0, cfg) == pytest.approx(1e-4)  # (0 + 1) / 10 of the peak
    assert _lr_at(9, cfg) == pytest.approx(1e-3)
    # cosine from the peak at step 10 to 0.1 * peak at step 100; halfway (step 55) is
    # 0.1 + 0.9 * 0.5 = 0.55 of the peak.
    assert _lr_at(55, cfg) == pytest.approx(0.55e-3)
    assert _lr_at(100, cfg) == pytest.approx(1e-4)


def test_annealing_phase_follows_the_main_schedule_without_changing_it():
    main = PretrainConfig(steps=100, warmup_steps=10, lr=1e-3, min_lr_ratio=0.1, anneal_steps=0)
    annealed = PretrainConfig(steps=100, warmup_steps=10, lr=1e-3, min_lr_ratio=0.1,
                              anneal_steps=20, anneal_lr=5e-4, anneal_weights={"count": 1.0})
    assert annealed.total_steps == 120
    assert [_lr_at(s, annealed) for s in range(100)] == [_lr_at(s, main) for s in range(100)]
    # From anneal_lr at step 100, linearly to the floor (0.1 * 1e-3) at step 120.
    assert _lr_at(100, annealed) == pytest.approx(5e-4)
    assert _lr_at(110, annealed) == pytest.approx(3e-4)
    assert _lr_at(120, annealed) == pytest.approx(1e-4)


def test_annealing_fields_are_checked():
    with pytest.raises(ValueError, match="outside the mixture"):
        PretrainConfig(anneal_weights={"counting": 4.0})
    with pytest.raises(ValueError, match="anneal_steps"):
        PretrainConfig(anneal_steps=-1)


def test_annealing_weights_set_the_mixture_after_the_main_phase():
    only_count = {name: 0.0 for name in PretrainConfig().mixture} | {"count": 1.0}
    cfg = small_config(steps=10, batch_size=12, anneal_steps=5, anneal_weights=only_count)
    plain = small_config(steps=10, batch_size=12)
    before, _ = sample_batch(cfg, 9)
    assert [r.id for r in before] == [r.id for r in sample_batch(plain, 9)[0]]
    assert len({r.domain for r in before}) > 1
    after, _ = sample_batch(cfg, 10)
    assert {r.domain for r in after} == {"count"} and len(after) == 12


def test_resumed_build_equals_uninterrupted(tmp_path):
    threads = torch.get_num_threads()
    full = pretrain(tmp_path / "full" / "base", small_config(threads=threads + 1))
    assert torch.get_num_threads() == threads  # the process's thread count is given back
    # Same recipe stopped after 2 steps (its checkpoint), then resumed to 4. The warm-up covers
    # all four steps, so the learning rates of both schedules agree step by step.
    pretrain(tmp_path / "cut" / "base", small_config(steps=2))
    with pytest.warns(UserWarning, match=r"changed recipe \(steps\)"):
        resumed = pretrain(tmp_path / "cut" / "base", small_config(), resume=True)
    a = load_file(full / "model.safetensors")
    b = load_file(resumed / "model.safetensors")
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    card = json.loads((resumed / "card.json").read_text())
    assert card["recipe"]["steps"] == 4 and card["parameters"] > 0
    assert set(card["test_metrics"]) >= {"count/accuracy", "ground/iou", "digits/accuracy"}
    assert (resumed / "pretraining.png").stat().st_size > 1000


def test_checkpoints_are_the_trainers_and_hold_the_object_head(tmp_path):
    out = tmp_path / "b" / "base"
    cfg = small_config(steps=3, save_every=1)
    pretrain(out, cfg)
    run = run_folder(out)
    found = latest_checkpoint(run)
    # The trainer's layout beside the output, two kept (steps 2 and 3 of the three saved).
    assert [p.name for p in list_checkpoints(run)] == ["step-000002", "step-000003"]
    assert found == run / "checkpoints" / "step-000003" and not (out / "checkpoints").exists()
    weights = load_file(found / "model.safetensors")
    assert weights["head.weight"].shape[0] == object_head_outputs(box_weight=1.0)
    state = json.loads((found / STATE_FILE).read_text())
    assert state["step"] == 3 and state["object_head"] == object_head_outputs(box_weight=1.0)
    assert state["recipe"] == cfg.model_dump(mode="json")
    assert [row["step"] for row in load_run_metrics(found)] == [1, 2, 3]


def test_object_head_labels_each_object_at_its_centre_token(monkeypatch):
    """Fake visual tokens carry each object's shape, colour and box coordinates (in the 16x16
    grounding frame: 4-px cells, x1/y1 floored, x2/y2 ceiled) one-hot at the token of the 4x4 grid
    (16-px cells, row = y) holding its centre; where two centres share a cell the token carries
    the opposite of their labels, so labelling such objects would fail."""
    names = list(COLORS)
    labels = len(SHAPES) + len(COLORS)
    width = object_head_outputs(box_weight=1.0)
    assert width == labels + 4 * 17

    def cell(obj) -> int:
        x1, y1, x2, y2 = obj["box"]
        return int((y1 + y2) / 2 / 16) * 4 + int((x1 + x2) / 2 / 16)

    def fake_tokens(policy, records):
        feats = torch.zeros(len(records), 16, width)
        for i, record in enumerate(records):
            assert record.meta["image_size"] == (64, 64)
            cells = [cell(o) for o in record.meta["objects"]]
            for obj, c in zip(record.meta["objects"], cells, strict=True):
                sign = 20.0 if cells.count(c) == 1 else -20.0
                feats[i, c, SHAPES.index(obj["shape"])] += sign
                feats[i, c, len(SHAPES) + names.index(obj["color"])] += sign
                x1, y1, x2, y2 = obj["box"]
                coarse = [x1 // 4, y1 // 4, math.ceil(x2 / 4), math.ceil(y2 / 4)]
                for k, v in enumerate(coarse):
                    feats[i, c, labels + 17 * k + v] += sign
        return feats

    monkeypatch.setattr(object_head_module, "visual_tokens", fake_tokens)
    records = make_task("count", "train", 24, seed=3) + make_task("digits", "train", 2, seed=3)
    shared = [r for r in records if "objects" in r.meta
              and len({cell(o) for o in r.meta["objects"]}) < len(r.meta["objects"])]
    assert shared  # the check below covers objects that share a cell
    assert any(o["box"][2] % 4 for r in records if "objects" in r.meta for o in r.meta["objects"])
    head = torch.nn.Linear(width, width)
    with torch.no_grad():
        head.weight.copy_(torch.eye(width))
        head.bias.zero_()
    loss, metrics = object_head_loss(None, head, records, box_weight=1.0)
    assert metrics == {"object_shape_acc": 1.0, "object_box_acc": 1.0}
    assert loss.item() < 1e-6
    loss.backward()
    assert head.weight.grad is not None
    labels_only, metrics = object_head_loss(None, head, records)  # box term off
    assert set(metrics) == {"object_shape_acc"} and labels_only.item() < 1e-6
    assert object_head_loss(None, head, records[-2:]) is None  # no scene among the records


def test_a_finished_build_resumes_into_its_annealing_phase(tmp_path):
    anneal = {"anneal_steps": 2, "anneal_lr": 5e-4, "anneal_weights": {"count": 3.0}}
    full = pretrain(tmp_path / "full" / "base", small_config(**anneal))
    pretrain(tmp_path / "cut" / "base", small_config())
    with warnings.catch_warnings():
        # Fields that act only after `steps` do not change the steps already taken.
        warnings.simplefilter("error")
        resumed = pretrain(tmp_path / "cut" / "base", small_config(**anneal), resume=True)
    a = load_file(full / "model.safetensors")
    b = load_file(resumed / "model.safetensors")
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=0, atol=1e-6)
    log = load_run_metrics(run_folder(resumed))
    assert [row["step"] for row in log] == [1, 2, 3, 4, 5, 6]
    assert log[4]["lr"] == pytest.approx(5e-4)


def test_resume_can_switch_the_object_head_off_but_not_change_its_shape(tmp_path):
    out = tmp_path / "b" / "base"
    pretrain(out, small_config(steps=2))  # object head with its box term (the defaults)
    with pytest.warns(UserWarning, match="changed recipe"), \
            pytest.raises(ValueError, match="object_head_box_weight"):
        pretrain(out, small_config(object_head_box_weight=0.0), resume=True)
    with pytest.warns(UserWarning, match="changed recipe"):
        pretrain(out, small_config(object_head_weight=0.0), resume=True)
    log = load_run_metrics(run_folder(out))
    assert [("object_loss" in row) for row in log] == [True, True, False, False]


def test_the_shipped_base_was_built_with_the_default_recipe():
    # PretrainConfig's defaults claim to be the shipped recipe: a changed default (or a new base
    # built with other fields) must update the other. `threads` only sets torch's thread count.
    card = json.loads((BASE_CHECKPOINT / "card.json").read_text())
    changed = set(changed_fields(PretrainConfig(), card["recipe"])) - {"threads"}
    assert not changed, f"the shipped base's card differs from PretrainConfig() in {changed}"
