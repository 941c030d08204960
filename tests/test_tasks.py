"""Built-in task generators: determinism, disjoint splits, answers correct by construction."""

from __future__ import annotations

import itertools
import json
from collections import Counter

import numpy as np
import pytest
from PIL import Image
from skimage.measure import label, regionprops

from recap.tasks import render_target
from recap.tasks.common import image_hash
from recap.tasks.digits import compose, digit_bank, split_indices
from recap.tasks.jigsaw import TEST_SOURCES, TRAIN_SOURCES, assemble, cut_grid, source_crop
from recap.tasks.registry import TASKS, make_task, task_knobs
from recap.tasks.shapes import BACKGROUND, COLORS, floor, scale_box

N = 40  # records per check: enough to hit every branch, small enough for a 2-core machine


def _signature(records):
    return [
        (r.id, r.question, r.answer, r.answer_type, [image_hash(im) for im in r.images])
        for r in records
    ]


@pytest.mark.parametrize("name", sorted(TASKS))
def test_deterministic_by_seed(name):
    a = make_task(name, "train", 6, seed=3)
    b = make_task(name, "train", 6, seed=3)
    c = make_task(name, "train", 6, seed=4)
    assert _signature(a) == _signature(b)
    assert [r.meta for r in a] == [r.meta for r in b]
    assert [s[4] for s in _signature(a)] != [s[4] for s in _signature(c)]  # images change


@pytest.mark.parametrize("name", sorted(TASKS))
def test_train_test_disjoint_by_content(name):
    train = {tuple(s[4]) for s in _signature(make_task(name, "train", 150))}
    test = {tuple(s[4]) for s in _signature(make_task(name, "test", 150))}
    assert len(train) > 100 and len(test) > 100  # mostly distinct images within a split
    assert not train & test


def test_record_does_not_depend_on_n():
    # Record i is drawn from its own stream: the first 5 of 20 are the 5 of a call with n=5.
    assert _signature(make_task("count", "train", 20))[:5] == _signature(
        make_task("count", "train", 5)
    )


def _components(image: Image.Image) -> list:
    """Connected non-background blobs (objects are >= 2 px apart, so one blob per object)."""
    rgb = np.asarray(image)
    mask = (rgb != floor(rgb.shape[0], shading=60)).any(axis=-1)
    return regionprops(label(mask, connectivity=2))


def _shape_of(fill: float) -> str:
    # Fraction of its tight box an object fills: square 1.0; disc about 0.67-0.84 and
    # triangle about 0.50-0.58 at 5-20 px (measured over 1000+ drawn objects).
    return "square" if fill == 1.0 else "circle" if fill > 0.62 else "triangle"


def _objects_from_pixels(image: Image.Image) -> list[tuple[str, str, tuple[int, ...]]]:
    """(colour, shape, box) of every blob, recovered from the pixels alone."""
    rgb = np.asarray(image)
    palette = {v: k for k, v in COLORS.items()}
    out = []
    for region in _components(image):
        y1, x1, y2, x2 = region.bbox  # skimage: (min_row, min_col, max_row, max_col), exclusive
        r, c = region.coords[0]
        out.append((palette[tuple(int(v) for v in rgb[r, c])], _shape_of(region.extent),
                    (x1, y1, x2, y2)))
    return sorted(out, key=lambda o: o[2])


def _objects_from_meta(record) -> list[tuple[str, str, tuple[int, ...]]]:
    return sorted(((o["color"], o["shape"], tuple(o["box"])) for o in record.meta["objects"]),
                  key=lambda o: o[2])


def test_count_answers_match_the_pixels():
    records = make_task("count", "train", N, queries=("all", "color", "shape", "color_shape"))
    kinds = Counter(r.meta["query"]["kind"] for r in records)
    assert set(kinds) == {"all", "color", "shape", "color_shape"}
    for r in records:
        objects = _objects_from_pixels(r.images[0])
        assert objects == _objects_from_meta(r)
        q = r.meta["query"]
        expected = sum(
            (q["color"] in (None, c)) and (q["shape"] in (None, s)) for c, s, _ in objects
        )
        assert r.answer == str(expected) and r.answer_type == "count"


def test_describe_lists_every_object_in_reading_order():
    records = make_task("describe", "train", N)
    for r in records:
        objects = sorted(_objects_from_pixels(r.images[0]), key=lambda o: (o[2][1], o[2][0]))
        expected = ", ".join(f"{c} {s} [{', '.join(map(str, scale_box(b, (64, 64), 16)))}]"
                             for c, s, b in objects)
        assert r.answer == expected and r.answer_type == "text"
    bare = make_task("describe", "train", 3, coord_scale=None, n_objects=(2, 2))
    assert all(r.answer.count(", ") == 1 and "[" not in r.answer for r in bare)


def test_shaded_floor_and_paper_encode_position():
    f = floor(64, shading=60).astype(int)
    assert (f[..., 2] == BACKGROUND[2]).all() and (floor(64, shading=0) == BACKGROUND).all()
    # red rises left to right, green top to bottom, 60 levels end to end: a patch's colour
    # alone tells where it is.
    assert (np.diff(f[..., 0], axis=1) >= 0).all() and f[0, -1, 0] - f[0, 0, 0] == 60
    assert (np.diff(f[..., 1], axis=0) >= 0).all() and f[-1, 0, 1] - f[0, 0, 1] == 60
    assert (np.diff(f[..., 0], axis=0) == 0).all()
    plain = np.asarray(compose([3, 1500], shading=0), dtype=int)
    shaded = np.asarray(compose([3, 1500], shading=60), dtype=int)
    assert (shaded[..., 2] == plain[..., 2]).all()  # blue untouched: the same ink
    assert shaded[0, -1, 0] == 195 and shaded[-1, 0, 1] == 195 and shaded[0, 0, 0] == 255


def test_count_difficulty_knobs():
    records = make_task("count", "train", 10, image_size=32, n_objects=(3, 3), obj_size=(5, 6),
                        n_colors=2, n_shapes=1, queries=("all",))
    for r in records:
        assert r.images[0].size == (32, 32)
        assert r.answer == "3"
        assert {o["color"] for o in r.meta["objects"]} <= {"red", "green"}
        assert {o["shape"] for o in r.meta["objects"]} == {"circle"}


def test_scale_box_rounds_outwards():
    # 64 px image, 16-unit frame (4 px per unit): x1 = 5 // 4 = 1, y1 = 7 // 4 = 1,
    # x2 = ceil(20 / 4) = 5, y2 = ceil(33 / 4) = ceil(8.25) = 9.
    assert scale_box((5, 7, 20, 33), (64, 64), 16) == (1, 1, 5, 9)
    assert scale_box((5, 7, 20, 33), (64, 64), 64) == (5, 7, 20, 33)


@pytest.mark.parametrize("coord_scale", [None, 16])
def test_ground_box_encloses_the_unique_referent(coord_scale):
    for r in make_task("ground", "train", N, coord_scale=coord_scale):
        color, shape = r.question.split("Locate the ")[1].split(".")[0].split()
        matches = [o for o in _objects_from_pixels(r.images[0]) if o[:2] == (color, shape)]
        assert len(matches) == 1  # the referring expression is unique in the scene
        px1, py1, px2, py2 = matches[0][2]
        x1, y1, x2, y2 = (int(v) for v in r.answer.strip("[]").split(","))
        scale = r.meta["coord_scale"]
        assert scale == (coord_scale or 64) and r.meta["image_size"] == (64, 64)
        unit = 64 / scale  # pixels per frame unit
        # the box contains the object's pixels and is at most one unit larger on each side
        assert x1 * unit <= px1 < (x1 + 1) * unit and y1 * unit <= py1 < (y1 + 1) * unit
        assert (x2 - 1) * unit < px2 <= x2 * unit and (y2 - 1) * unit < py2 <= y2 * unit
        assert r.answer_type == "bbox"


@pytest.mark.parametrize("negative", ["random", "popular", "adversarial"])
def test_exists_balanced_and_negatives_by_type(negative):
    n = 60
    records = make_task("exists", "train", n, negative=negative)
    assert sum(r.answer == "yes" for r in records) == n // 2
    frequency = Counter(
        c for r in records for c in {(o["color"], o["shape"]) for o in r.meta["objects"]}
    )
    combos = [(c, s) for c in ("red", "green", "blue", "yellow")
              for s in ("circle", "square", "triangle")]
    for r in records:
        present = {(o[0], o[1]) for o in _objects_from_pixels(r.images[0])}
        asked = (r.meta["query"]["color"], r.meta["query"]["shape"])
        assert r.question == f"Is there a {asked[0]} {asked[1]} in the image?"
        assert r.meta["negative"] == negative and r.answer_type == "yesno"
        assert (asked in present) == (r.answer == "yes") == r.meta["present"]
        if r.answer == "yes":
            continue
        absent = [c for c in combos if c not in present]
        if negative == "adversarial":
            assert any(asked[0] == c or asked[1] == s for c, s in present)
        if negative == "popular":
            assert frequency[asked] == max(frequency[c] for c in absent)


def test_digits_answer_is_the_labels_of_held_out_scans():
    _, labels = digit_bank()
    train_pool, test_pool = set(split_indices("train")), set(split_indices("test"))
    # 1797 scans, round(0.8 * 1797) = round(1437.6) = 1438 for train, 359 for test
    assert len(train_pool) == 1438 and len(test_pool) == 359 and not train_pool & test_pool
    for split, pool in (("train", train_pool), ("test", test_pool)):
        for r in make_task("digits", split, 20):
            idx = r.meta["digit_indices"]
            assert set(idx) <= pool and 2 <= len(idx) <= 4
            assert r.answer == "".join(str(labels[i]) for i in idx) == "".join(
                map(str, r.meta["labels"]))
            assert image_hash(r.images[0]) == image_hash(compose(idx, 32, strip=True, shading=60))


def test_cut_and_assemble_follow_seed_002_conventions():
    # 5x7 image, grid (2, 3): cells are 7 // 3 = 2 wide and 5 // 2 = 2 high; the last column
    # (x = 6) and the last row (y = 4) are cropped away.
    pixels = np.arange(35, dtype=np.uint8).reshape(5, 7)
    cells = cut_grid(Image.fromarray(pixels), (2, 3))
    assert len(cells) == 6 and cells[0].size == (2, 2)
    np.testing.assert_array_equal(np.asarray(cells[4]), pixels[2:4, 2:4])  # row 1, column 1
    # given pieces [cell 2, cell 0, cell 3, cell 1] (2x2 grid): position 0 needs cell 0, the
    # given piece 1; position 1 needs cell 1 = given 3; position 2 -> given 0; 3 -> given 2.
    cells = cut_grid(Image.fromarray(pixels[:4, :4]), (2, 2))
    given = [cells[2], cells[0], cells[3], cells[1]]
    rebuilt = assemble(given, [1, 3, 0, 2], (2, 2))
    np.testing.assert_array_equal(np.asarray(rebuilt), pixels[:4, :4])


@pytest.mark.parametrize(("grid", "split"), [((2, 2), "train"), ((3, 3), "test")])
def test_jigsaw_answer_reassembles_the_crop(grid, split):
    m, n = grid
    for r in make_task("jigsaw", split, 12, grid=grid):
        assert r.meta["grid"] == grid and r.answer_type == "permutation"
        assert r.meta["source"] in (TRAIN_SOURCES if split == "train" else TEST_SOURCES)
        answer = [int(v) for v in r.answer.strip("[]").split(",")]
        assert sorted(answer) == list(range(m * n))
        # piece_positions is the inverse permutation: given piece answer[p] came from p
        assert all(r.meta["piece_positions"][j] == p for p, j in enumerate(answer))
        crop = np.asarray(source_crop(r.meta["source"], r.meta["crop_box"], 64))
        h, w = 64 // m, 64 // n  # 3x3: 21 px cells, 64 - 63 = 1 px dropped bottom and right
        for p, j in enumerate(answer):
            row, col = divmod(p, n)
            expected = crop[row * h:(row + 1) * h, col * w:(col + 1) * w]
            np.testing.assert_array_equal(np.asarray(r.images[j]), expected)
    assert not set(TRAIN_SOURCES) & set(TEST_SOURCES)


def test_jigsaw_random_answers_carry_no_information_about_the_pieces():
    """Format-only puzzles (the jigsaw study's primer): same pieces as the real puzzles, a valid
    permutation as the answer, drawn independently of them (hit against the truth at chance)."""
    real = make_task("jigsaw", "train", 400, seed=3)
    noise = make_task("jigsaw", "train", 400, seed=3, random_answers=True)
    hits = []
    for r, f in zip(real, noise, strict=True):
        assert [np.asarray(x).tobytes() for x in r.images] == [
            np.asarray(x).tobytes() for x in f.images]
        assert f.meta["true_answer"] == r.answer
        answer, truth = (json.loads(a) for a in (f.answer, r.answer))
        assert sorted(answer) == [0, 1, 2, 3]
        hits.append(np.mean([a == t for a, t in zip(answer, truth, strict=True)]))
    # 400 puzzles: the mean hit of independent permutations is 0.25 (sd of the mean ~0.02)
    assert 0.19 < float(np.mean(hits)) < 0.31
    assert sum(f.answer == r.answer for r, f in zip(real, noise, strict=True)) < 40  # 1/24


def test_arith_answers_and_solutions():
    records = make_task("arith", "train", N)
    assert {r.meta["kind"] for r in records} == {"diff", "union", "remove", "digit_sum"}
    for r in records:
        kind, meta = r.meta["kind"], r.meta
        if kind == "digit_sum":
            expected = sum(meta["labels"])
        else:
            objects = _objects_from_pixels(r.images[0])
            assert objects == _objects_from_meta(r)
            colors = [o[0] for o in objects]
            words = r.question.split()
            if kind == "diff":  # "How many more A objects than B objects are there?"
                expected = colors.count(words[3]) - colors.count(words[6])
            elif kind == "union":  # "How many objects are A or B?"
                expected = colors.count(words[4]) + colors.count(words[6].rstrip("?"))
            else:  # "... if all circles were removed?"
                shape = words[7][:-1]
                expected = len(objects) - sum(o[1] == shape for o in objects)
        assert expected >= 0 and r.answer == str(expected) and r.answer_type == "number"
        assert meta["solution"].endswith(f"= {expected}.")
        assert render_target(r, "think") == (
            f"<think>{meta['solution']}</think><answer>{expected}</answer>"
        )


def test_registry_errors_name_the_options():
    assert set(TASKS) == {"count", "exists", "ground", "digits", "jigsaw", "arith", "describe",
                          "order"}
    with pytest.raises(ValueError, match=r"known: .*'arith'.*'count'"):
        make_task("nope", "train", 1)
    with pytest.raises(ValueError, match=r"accepted: .*coord_scale"):
        make_task("ground", "train", 1, coord_scle=16)
    with pytest.raises(ValueError, match="known: \\['train', 'test'\\]"):
        make_task("count", "val", 1)
    with pytest.raises(ValueError, match="known: \\['random', 'popular', 'adversarial'\\]"):
        make_task("exists", "train", 2, negative="hard")
    assert "image_size" in task_knobs("count") and "grid" in task_knobs("jigsaw")


@pytest.mark.parametrize("name", ["ground", "jigsaw"])
def test_preview_writes_a_contact_sheet(name, tmp_path):
    from recap.tasks.preview import preview_task

    out = preview_task(name, tmp_path / f"{name}.png", n=2)
    with Image.open(out) as im:
        assert im.format == "PNG" and im.width > 300


def test_order_answers_list_pieces_by_the_asked_rule():
    """The jigsaw study's format primer: the answer orders the given crops by the record's rule
    (brightness or redness, either way), every pair of crops is distinguishable, records are
    deterministic and the answer is a permutation the jigsaw rewards read (a right answer scores
    1 on hit and format)."""
    from recap.rewards import jigsaw_format, jigsaw_hit
    from recap.tasks.order import RULES

    records = make_task("order", "train", 20, seed=3)
    assert [r.id for r in records] == [r.id for r in make_task("order", "train", 20, seed=3)]
    for r in records:
        rule = next(x for x in RULES if x.first == r.meta["rule"])
        grey = [rule.sign * rule.measure(np.asarray(im)) for im in r.images]
        order = json.loads(r.answer)
        assert sorted(order) == [0, 1, 2, 3] and r.answer_type == "permutation"
        assert [grey[j] for j in order] == sorted(grey)
        assert min(b - a for a, b in itertools.pairwise(sorted(grey))) >= 12.0
        assert f"from 0 ({rule.first}) to 3 ({rule.last})" in r.question
        assert all(im.size == (32, 32) for im in r.images)
        target = render_target(r, "think")
        assert jigsaw_hit(target, r) == 1.0 and jigsaw_format(target, r) == 1.0
    assert len({r.answer for r in records}) > 5  # the orders vary
    assert {r.meta["rule"] for r in records} == {rule.first for rule in RULES}
    assert make_task("order", "test", 1)[0].images[0] != records[0].images[0]
    with pytest.raises(ValueError, match=r"pieces must be in 2\.\.9"):
        make_task("order", "train", 1, pieces=1)
