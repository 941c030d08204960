"""Known-answer tests of recap.rewards (RECAP format/accuracy/IoU, jigsaw-RFT sec. 3.2 jigsaw)."""

from __future__ import annotations

import doctest
import importlib
import logging
from concurrent.futures import ThreadPoolExecutor

import pytest

from recap.rewards import (
    REWARDS,
    accuracy,
    answer_format,
    box_iou,
    extract_answer,
    get_reward,
    iou,
    iou_at_05,
    jigsaw_acc,
    jigsaw_format,
    jigsaw_hit,
    register_reward,
    think_format,
    thinking_length,
)
from recap.tasks.record import Record


def rec(answer: str, answer_type: str, **meta: object) -> Record:
    return Record("r1", "test", [], "question?", answer, answer_type, meta=dict(meta))


def ans(text: str) -> str:
    return f"<think>reasoning</think><answer>{text}</answer>"


# ---------------------------------------------------------------- registry and wrapper


def test_registry_names() -> None:
    assert set(REWARDS) == {
        "think_format", "answer_format", "accuracy", "iou", "iou_at_05",
        "jigsaw_hit", "jigsaw_acc", "jigsaw_format",
    }
    assert get_reward("iou") is iou


def test_unknown_reward_lists_known_names() -> None:
    with pytest.raises(ValueError, match=r"unknown reward 'nope'.*think_format"):
        get_reward("nope")


def test_duplicate_registration_rejected() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_reward("accuracy")(lambda c, r: 1.0)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(0.25, 0.25), (2.0, 1.0), (-3.0, 0.0), (float("nan"), 0.0), (float("inf"), 1.0)],
)
def test_wrapper_clamps(raw: float, expected: float) -> None:
    name = f"_test_clamp_{raw}"
    try:
        fn = register_reward(name)(lambda c, r: raw)
        assert fn("x", rec("1", "number")) == expected
    finally:
        REWARDS.pop(name, None)


def test_wrapper_turns_exceptions_and_non_strings_into_zero(caplog) -> None:
    name = "_test_raises"

    def broken(completion: str, record: Record) -> float:
        raise RuntimeError("bug")

    try:
        fn = register_reward(name)(broken)
        with caplog.at_level(logging.WARNING, logger="recap.rewards.registry"):
            assert fn("x", rec("1", "number")) == 0.0
            assert fn("x", rec("1", "number")) == 0.0
        # logged once per reward name, not once per call
        assert sum("_test_raises" in m for m in caplog.messages) == 1
        assert fn(None, rec("1", "number")) == 0.0  # type: ignore[arg-type]
        assert think_format(b"<answer>1</answer>", rec("1", "number")) == 0.0  # type: ignore[arg-type]
    finally:
        REWARDS.pop(name, None)


@pytest.mark.parametrize("module", ["rewards.answers", "rewards.boxes", "rewards.formats",
                                    "rewards.jigsaw", "parsing", "evaluation.metrics"])
def test_docstring_examples(module: str) -> None:
    result = doctest.testmod(importlib.import_module(f"recap.{module}"))
    assert result.attempted > 0
    assert result.failed == 0


# ---------------------------------------------------------------- helpers


def test_extract_answer() -> None:
    assert extract_answer("<think>a</think><answer> 42 </answer>") == "42"
    assert extract_answer("<answer>1</answer> and <answer>2</answer>") == "2"
    assert extract_answer("<answer>a<answer>b</answer>") == "b"  # innermost/last opening
    assert extract_answer("<answer>unclosed") is None
    assert extract_answer("</answer><answer>") is None
    assert extract_answer("no tags") is None
    assert extract_answer("<answer></answer>") == ""


def test_thinking_length() -> None:
    assert thinking_length("<think>a b\nc</think><answer>1</answer>") == 3
    assert thinking_length("<think>a b c d") == 4  # truncated: counted to the end
    assert thinking_length("<think></think>") == 0
    assert thinking_length("<answer>x y</answer>") == 0


# ---------------------------------------------------------------- format rewards

R_NUM = rec("3", "number")


@pytest.mark.parametrize(
    "completion",
    [
        "<think>1+2=3</think><answer>3</answer>",
        "\n <think>\nmulti\nline\n</think>\n\n<answer> 3 </answer>\n",
        "<think></think><answer>3</answer>",  # empty thinking is allowed
    ],
)
def test_think_format_accepts(completion: str) -> None:
    assert think_format(completion, R_NUM) == 1.0


@pytest.mark.parametrize(
    "completion",
    [
        "",
        "<answer>3</answer>",  # no thinking
        "<think>x</think>",  # no answer
        "<answer>3</answer><think>x</think>",  # wrong order
        "Sure. <think>x</think><answer>3</answer>",  # text before
        "<think>x</think> so <answer>3</answer>",  # text between
        "<think>x</think><answer>3</answer> done",  # text after
        "<think>x</think><answer>3</answer><answer>3</answer>",  # two answers
        "<think>x</think><think>y</think><answer>3</answer>",  # two thinks
        "<think>x<answer>3</answer></think>",  # answer nested in think
        "<think>x</think><answer>  </answer>",  # blank answer
        "<think>x</think><answer>3",  # unclosed answer
        "<THINK>x</THINK><ANSWER>3</ANSWER>",  # tags are case-sensitive
        "</think>x<think><answer>3</answer>",  # reversed think tags
    ],
)
def test_think_format_rejects(completion: str) -> None:
    assert think_format(completion, R_NUM) == 0.0


def test_answer_format() -> None:
    assert answer_format("<answer>3</answer>", R_NUM) == 1.0
    assert answer_format("  \n<answer>\n3\n</answer> \n", R_NUM) == 1.0
    assert answer_format("<think>x</think><answer>3</answer>", R_NUM) == 0.0
    assert answer_format("<answer>3</answer></think>", R_NUM) == 0.0  # stray think tag
    assert answer_format("The answer: <answer>3</answer>", R_NUM) == 0.0
    assert answer_format("<answer>3</answer><answer>3</answer>", R_NUM) == 0.0
    assert answer_format("<answer></answer>", R_NUM) == 0.0
    assert answer_format("3", R_NUM) == 0.0


# ---------------------------------------------------------------- accuracy by answer type


def test_accuracy_needs_answer_tags() -> None:
    assert accuracy("3", R_NUM) == 0.0
    assert accuracy("<answer>3", R_NUM) == 0.0
    assert accuracy(ans("3"), R_NUM) == 1.0
    assert accuracy("<answer>3</answer>", R_NUM) == 1.0  # format is a separate reward


CHOICE = rec("B", "choice", choices=["a shark", "a whale", "a trout"])


@pytest.mark.parametrize("text", ["B", "(B)", "B.", "B)", "b", "whale", "A Whale.", "(B) whale"])
def test_choice_accepts(text: str) -> None:
    assert accuracy(ans(text), CHOICE) == 1.0


@pytest.mark.parametrize("text", ["A", "(C)", "shark", "A. shark", "D", "whales", ""])
def test_choice_rejects(text: str) -> None:
    assert accuracy(ans(text), CHOICE) == 0.0


def test_choice_target_given_as_text() -> None:
    record = rec("a trout", "choice", choices=["a shark", "a whale", "a trout"])
    assert accuracy(ans("C"), record) == 1.0  # "a trout" is option C
    assert accuracy(ans("trout"), record) == 1.0
    assert accuracy(ans("B"), record) == 0.0


@pytest.mark.parametrize(
    ("target", "text", "expected"),
    [
        ("12.5", "12.5", 1.0),
        ("12.5", "12.50 cm", 1.0),
        ("1234", "1,234", 1.0),
        ("50", "50%", 1.0),  # percent sign dropped, not divided by 100
        ("-3", "\u22123", 1.0),  # unicode minus
        ("0.75", "3/4", 1.0),
        ("5", "x = 5", 1.0),  # the only number in the text
        ("1", "1 + 1e-7", 1.0),  # leading number 1; within the 1e-6 tolerance anyway
        ("12.5", "12.6", 0.0),
        ("3", "between 3 and 5", 0.0),  # ambiguous: several numbers, none leading
        ("3", "three", 0.0),  # number words are for counts only
    ],
)
def test_number(target: str, text: str, expected: float) -> None:
    assert accuracy(ans(text), rec(target, "number")) == expected


def test_number_tolerance() -> None:
    record = rec("100", "number", tolerance=0.01)
    # isclose: |100.9 - 100| = 0.9 <= max(0.01 * 100.9, 0.01) = 1.009
    assert accuracy(ans("100.9"), record) == 1.0
    # |102 - 100| = 2 > max(0.01 * 102, 0.01) = 1.02
    assert accuracy(ans("102"), record) == 0.0
    # default 1e-6: 100.001 is off by 1e-3 > 1e-6 * 100.001
    assert accuracy(ans("100.001"), rec("100", "number")) == 0.0


@pytest.mark.parametrize(
    ("text", "expected"),
    [("Red ball", 1.0), ("the red ball.", 1.0), ("  red   ball ", 1.0), ("red balls", 0.0),
     ("ball red", 0.0), ("", 0.0)],
)
def test_text(text: str, expected: float) -> None:
    assert accuracy(ans(text), rec("a red ball", "text")) == expected


@pytest.mark.parametrize(
    ("target", "text", "expected"),
    [("yes", "Yes", 1.0), ("yes", "yes, there is a cat.", 1.0), ("yes", "True", 1.0),
     ("no", "No.", 1.0), ("no", "false", 1.0), ("yes", "no", 0.0), ("no", "yes", 0.0),
     ("yes", "maybe", 0.0), ("True", "yes", 1.0)],
)
def test_yesno(target: str, text: str, expected: float) -> None:
    assert accuracy(ans(text), rec(target, "yesno")) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [("3", 1.0), ("three", 1.0), ("Three.", 1.0), ("3 circles", 1.0), ("3.0", 1.0),
     ("4", 0.0), ("3.5", 0.0), ("twenty three", 0.0), ("thirty", 0.0), ("", 0.0)],
)
def test_count(text: str, expected: float) -> None:
    assert accuracy(ans(text), rec("3", "count")) == expected


def test_count_words_up_to_twenty_and_none() -> None:
    assert accuracy(ans("twenty"), rec("20", "count")) == 1.0
    assert accuracy(ans("zero"), rec("0", "count")) == 1.0
    assert accuracy(ans("none"), rec("0", "count")) == 1.0


@pytest.mark.parametrize(
    ("target", "text", "expected"),
    [
        ("\\frac{1}{2}", "0.5", 1.0),
        ("\\frac{1}{2}", "1/2", 1.0),
        ("2\\sqrt{2}", "\\sqrt{8}", 1.0),  # symbolic equality
        ("x+1", "1+x", 1.0),
        ("3", "\\boxed{3}", 1.0),
        ("3", "3x", 0.0),  # read as an expression, not as "3 and a word"
        ("2\\sqrt{2}", "3", 0.0),
        ("3", "4", 0.0),
    ],
)
def test_math(target: str, text: str, expected: float) -> None:
    assert accuracy(ans(text), rec(target, "math")) == expected


def test_math_outside_the_main_thread() -> None:
    # math-verify's signal timeout is main-thread only; elsewhere it must run without one
    with ThreadPoolExecutor(max_workers=1) as pool:
        right = pool.submit(accuracy, ans("2/4"), rec("\\frac{1}{2}", "math")).result()
        wrong = pool.submit(accuracy, ans("3/4"), rec("\\frac{1}{2}", "math")).result()
    assert (right, wrong) == (1.0, 0.0)


def test_math_overlong_answer_is_not_parsed() -> None:
    # "1+0+0+...": 2 001 chars > MAX_MATH_CHARS, rejected although it equals 1
    assert accuracy(ans("1" + "+0" * 1000), rec("1", "math")) == 0.0
    assert accuracy(ans("1" + "+0" * 10), rec("1", "math")) == 1.0


BOX = rec("[0, 0, 10, 10]", "bbox")


def test_bbox_accuracy_is_iou_at_half() -> None:
    assert accuracy(ans("[0, 0, 10, 10]"), BOX) == 1.0
    assert accuracy(ans("[0, 0, 10, 5]"), BOX) == 1.0  # IoU 50/100 = 0.5, threshold inclusive
    assert accuracy(ans("[5, 0, 15, 10]"), BOX) == 0.0  # IoU 1/3
    assert accuracy(ans("0, 0, 10, 10"), BOX) == 0.0  # the box needs its brackets


PERM = rec("[2, 0, 3, 1]", "permutation", grid=(2, 2))


def test_permutation_accuracy() -> None:
    assert accuracy(ans("[2, 0, 3, 1]"), PERM) == 1.0
    assert accuracy(ans("[2,0,3,1]"), PERM) == 1.0
    assert accuracy(ans("[2, 0, 1, 3]"), PERM) == 0.0
    assert accuracy(ans("[2, 0, 3]"), PERM) == 0.0


# ---------------------------------------------------------------- IoU


@pytest.mark.parametrize(
    ("box", "expected"),
    [
        ("[0, 0, 10, 10]", 1.0),
        ("[5, 0, 15, 10]", 50 / 150),  # overlap 5x10 = 50; union 100 + 100 - 50 = 150
        ("[0, 0, 5, 5]", 25 / 100),  # inside the target: 25 / 100
        ("[-5, -5, 5, 5]", 25 / 175),  # overlap 5x5 = 25; union 100 + 100 - 25 = 175
        ("[2.5, 2.5, 7.5, 7.5]", 25 / 100),  # continuous coordinates
        ("[10, 0, 20, 10]", 0.0),  # touching edges, no area in common
        ("[20, 20, 30, 30]", 0.0),  # disjoint
        ("[10, 10, 0, 0]", 0.0),  # inverted
        ("[0, 0, 0, 10]", 0.0),  # zero width
        ("[0, 0, 10]", 0.0),  # three numbers
        ("box [1, 2] then [5, 0, 15, 10]", 50 / 150),  # first four-number group
        ("[0, 0, 1e999, 10]", 0.0),  # overflow to inf is not a box
    ],
)
def test_iou(box: str, expected: float) -> None:
    assert iou(f"<answer>{box}</answer>", BOX) == pytest.approx(expected, abs=1e-12)


def test_iou_helpers_and_threshold() -> None:
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(1 / 3)
    assert iou("[0, 0, 10, 10]", BOX) == 0.0  # no answer tags
    assert iou_at_05("<answer>[0, 0, 10, 5]</answer>", BOX) == 1.0  # IoU exactly 0.5
    assert iou_at_05("<answer>[0, 0, 10, 4.9]</answer>", BOX) == 0.0  # IoU 0.49
    # coarse frame: same boxes scaled by 1/10 give the same IoU
    coarse = rec("[0, 0, 1, 1]", "bbox", coord_scale=100)
    assert iou("<answer>[0.5, 0, 1.5, 1]</answer>", coarse) == pytest.approx(1 / 3)


def test_iou_bad_target_scores_zero() -> None:
    assert iou("<answer>[0, 0, 1, 1]</answer>", rec("not a box", "bbox")) == 0.0


def test_box_and_jigsaw_rewards_refuse_other_tasks() -> None:
    # a jigsaw target "[2, 0, 3, 1]" also reads as a box and a box as an index list: the answer
    # type keeps a misconfigured reward from scoring them (0.0, logged once)
    assert iou("<answer>[2, 0, 3, 1]</answer>", PERM) == 0.0
    assert iou_at_05("<answer>[2, 0, 3, 1]</answer>", PERM) == 0.0
    assert jigsaw_hit(ans("[0, 0, 10, 10]"), BOX) == 0.0
    assert jigsaw_acc(ans("[0, 0, 10, 10]"), BOX) == 0.0


# ---------------------------------------------------------------- jigsaw (jigsaw-RFT sec. 3.2)

J33 = rec("[4, 0, 7, 2, 8, 1, 3, 5, 6]", "permutation", grid=(3, 3))


def test_jigsaw_hit() -> None:
    assert jigsaw_hit(ans("[4, 0, 7, 2, 8, 1, 3, 5, 6]"), J33) == 1.0
    # positions 0, 1, 2 right, the other six shifted: 3/9
    assert jigsaw_hit(ans("[4, 0, 7, 1, 2, 8, 6, 3, 5]"), J33) == pytest.approx(3 / 9)
    assert jigsaw_hit(ans("[0, 1, 2, 3, 4, 5, 6, 7, 8]"), J33) == 0.0  # identity: none right
    assert jigsaw_hit(ans("[4, 0]"), J33) == pytest.approx(2 / 9)  # missing positions are wrong
    # entries past N are ignored: 9 right of 9
    assert jigsaw_hit(ans("[4, 0, 7, 2, 8, 1, 3, 5, 6, 6, 6]"), J33) == 1.0
    assert jigsaw_hit("[4, 0, 7, 2, 8, 1, 3, 5, 6]", J33) == 0.0  # no answer tags
    assert jigsaw_hit(ans("[4, 0, x]"), J33) == 0.0  # unreadable list


def test_jigsaw_acc() -> None:
    assert jigsaw_acc(ans("[4, 0, 7, 2, 8, 1, 3, 5, 6]"), J33) == 1.0
    assert jigsaw_acc(ans("[4, 0, 7, 2, 8, 1, 3, 6, 5]"), J33) == 0.0
    assert jigsaw_acc(ans("[4, 0, 7, 2, 8, 1, 3, 5, 6, 0]"), J33) == 0.0


def test_jigsaw_non_square_grid() -> None:
    record = rec("[5, 4, 3, 2, 1, 0]", "permutation", grid=(2, 3))
    assert jigsaw_hit(ans("[5, 4, 3, 0, 1, 2]"), record) == pytest.approx(4 / 6)
    assert jigsaw_format(ans("[5, 4, 3, 0, 1, 2]"), record) == 1.0
    assert jigsaw_format(ans("[5, 4, 3, 0, 1, 6]"), record) == 0.0  # 6 is not an index of 2x3


def test_jigsaw_inconsistent_record_scores_zero() -> None:
    bad = rec("[0, 1, 2]", "permutation", grid=(2, 2))  # 3 entries for a 2x2 grid
    assert jigsaw_hit(ans("[0, 1, 2]"), bad) == 0.0
    assert jigsaw_format(ans("[0, 1, 2, 3]"), bad) == 0.0


@pytest.mark.parametrize(
    "completion",
    [
        "<think>x</think><answer>[8, 7, 6, 5, 4, 3, 2, 1, 0]</answer>",
        "<think>x</think>\n<answer> [8,7,6,5,4,3,2,1,0] </answer>",
        # the paper does not forbid text outside the tags
        "Let me see. <think>x</think> So: <answer>[8, 7, 6, 5, 4, 3, 2, 1, 0]</answer> Done.",
    ],
)
def test_jigsaw_format_accepts(completion: str) -> None:
    assert jigsaw_format(completion, J33) == 1.0


@pytest.mark.parametrize(
    "completion",
    [
        "<answer>[8, 7, 6, 5, 4, 3, 2, 1, 0]</answer>",  # no think
        "<answer>[8, 7, 6, 5, 4, 3, 2, 1, 0]</answer><think>x</think>",  # wrong order
        "<think>x</think><think>y</think><answer>[8, 7, 6, 5, 4, 3, 2, 1, 0]</answer>",
        "<think>x</think><answer>[8, 7, 6, 5, 4, 3, 2, 1, 0]</answer><answer>[0]</answer>",
        "<think>x</think><answer>[8, 8, 6, 5, 4, 3, 2, 1, 0]</answer>",  # repeat
        "<think>x</think><answer>[8, 7, 6, 5, 4, 3, 2, 1, 9]</answer>",  # 9 out of range
        "<think>x</think><answer>[8, 7, 6, 5, 4, 3, 2, 1]</answer>",  # 8 of 9 indices
        "<think>x</think><answer>8, 7, 6, 5, 4, 3, 2, 1, 0</answer>",  # no brackets
        "<think>x</think><answer>(8, 7, 6, 5, 4, 3, 2, 1, 0)</answer>",
        "<think>x</think><answer>The order is [8, 7, 6, 5, 4, 3, 2, 1, 0]</answer>",
        "<think>x</think><answer>[8, 7, 6, 5, 4, 3, 2, 1, 0] [0]</answer>",
        "<think>x</think><answer>[8 7 6 5 4 3 2 1 0]</answer>",  # not comma-separated
        "<think>x</think><answer>[8, 7, 6, 5, 4, 3, 2, 1, -0]</answer>",
    ],
)
def test_jigsaw_format_rejects(completion: str) -> None:
    assert jigsaw_format(completion, J33) == 0.0


def test_every_reward_is_total_by_itself_on_the_records_it_is_meant_for() -> None:
    """Not only the safety wrapper: on a record of its answer type each reward function itself
    returns a float in [0, 1] without raising (the wrapper's value equals the unwrapped one);
    elsewhere (a jigsaw reward on a number record) the wrapper scores 0."""
    records = [R_NUM, CHOICE, BOX, PERM, J33, rec("\\frac{1}{2}", "math"), rec("yes", "yesno")]
    texts = ["", ans("3"), ans("[0, 0, 10, 10]"), "<think><answer></think></answer>", "\x00"]
    meant = {"jigsaw_hit": {"permutation"}, "jigsaw_acc": {"permutation"},
             "jigsaw_format": {"permutation"}, "iou": {"bbox"}, "iou_at_05": {"bbox"}}
    for name, fn in REWARDS.items():
        for record in records:
            for text in texts:
                value = fn(text, record)
                if record.answer_type in meant.get(name, {record.answer_type}):
                    inner = fn.__wrapped__(text, record)  # type: ignore[attr-defined]
                    assert isinstance(inner, float | int) and 0.0 <= inner <= 1.0, name
                    assert value == float(inner), (name, text)
                else:
                    assert value == 0.0, (name, record.answer_type)


def test_rewards_passed_as_functions_resolve_next_to_the_registry():
    """``resolve_rewards``: registered names from the registry, passed functions made total like
    registered ones; a passed name that shadows a registered one, or an unknown name, is refused."""
    from recap.rewards import REWARDS, resolve_rewards

    fns = resolve_rewards(["accuracy", "mine"], {"mine": lambda c, r: 2.0 if c else 1 / 0})
    assert fns["accuracy"] is REWARDS["accuracy"] and "mine" not in REWARDS
    record = rec("1", "number")
    assert fns["mine"]("x", record) == 1.0  # clamped to [0, 1]
    assert fns["mine"]("", record) == 0.0  # an exception scores 0
    with pytest.raises(ValueError, match=r"\['accuracy'\] are already registered"):
        resolve_rewards(["accuracy"], {"accuracy": lambda c, r: 1.0})
    with pytest.raises(ValueError, match="unknown reward 'nope'"):
        resolve_rewards(["nope"], {"mine": lambda c, r: 1.0})
