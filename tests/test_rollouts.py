"""SFT on correct rollouts: filtering by reward and the JSONL round trip into a recipe."""

import json
from types import SimpleNamespace

import pytest

from recap.config import load_config
from recap.evaluation.rollouts import correct_rollouts, write_rollouts
from recap.tasks.prompts import render_prompt, render_target
from recap.tasks.registry import make_task
from recap.training.build import domain_records


class CannedPolicy:
    """generate() returns, per record, G completions: right, wrong, right, unformatted."""

    def generate(self, records, prompts, num_samples, temperature, max_new_tokens):
        assert prompts == [render_prompt(r, "think") for r in records] and num_samples == 4
        texts = []
        for r in records:
            texts += [f"<think>count</think><answer>{r.answer}</answer>",
                      "<think>count</think><answer>99</answer>",
                      f"<think>again</think><answer>{r.answer}</answer>", r.answer]
        return SimpleNamespace(texts=texts)


def test_rollouts_kept_by_reward_round_trip_into_an_sft_recipe(tmp_path):
    records = make_task("count", "train", 3, seed=1)
    kept, counts = correct_rollouts(CannedPolicy(), records, reward="accuracy", num_samples=4,
                                    batch_size=2)
    assert counts == {"sampled": 12, "kept": 6, "questions_with_one": 3}
    assert [r.id.split("#")[1] for r in kept] == ["0", "2"] * 3  # right answers in answer tags
    formatted, _ = correct_rollouts(CannedPolicy(), records, reward="think_format", num_samples=4)
    assert [r.id.split("#")[1] for r in formatted] == ["0", "1", "2"] * 3
    assert kept[0].id == f"{records[0].id}#0" and kept[0].meta["source_id"] == records[0].id
    assert kept[0].meta["score"] == 1.0 and kept[0].meta["reward"] == "accuracy"
    with pytest.raises(ValueError, match="threshold must be in"):
        correct_rollouts(CannedPolicy(), records, threshold=1.5)
    every, counts = correct_rollouts(CannedPolicy(), records + records[:1], reward=None,
                                     num_samples=4, batch_size=3)
    assert counts["kept"] == 16 and all(r.meta["score"] is None for r in every)
    # positions, not ids, tell which question a rollout answers (ids may repeat)
    assert [r.meta["source_index"] for r in every] == [i for i in range(4) for _ in range(4)]

    path = write_rollouts(kept, tmp_path / "data" / "rollouts.jsonl")
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    assert len(rows) == 6 and all(row["images"] for row in rows)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(json.dumps({
        "model": {"path": "builtin:base"},
        "domains": [{"name": "own", "source": {"path": str(path)}, "role": "reasoning",
                     "mode": "sft", "template": "think"}]}))
    cfg = load_config(recipe)
    loaded = domain_records(cfg.domains[0], seed=0)
    assert [r.id for r in loaded] == [r.id for r in kept]
    for original, back in zip(kept, loaded, strict=True):
        # the SFT target is the model's own completion, verbatim, and the image survives
        assert render_target(back, "think") == original.meta["completion"]
        assert back.load_images()[0].size == original.load_images()[0].size
    assert render_target(records[0], "think").startswith("<think>")  # others unchanged
