"""Dataset loaders: JSONL / JSON files and HF datasets on disk, public formats, bad rows."""

from __future__ import annotations

import json
import logging

import pytest
from PIL import Image

from recap.tasks.loaders import load_records


@pytest.fixture
def folder(tmp_path):
    """Two good PNGs (one in a sub-folder), one corrupt file, no ``missing.png``."""
    Image.new("RGB", (40, 30), (255, 0, 0)).save(tmp_path / "a.png")
    (tmp_path / "img").mkdir()
    Image.new("RGB", (20, 10), (0, 0, 255)).save(tmp_path / "img" / "b.png")
    (tmp_path / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    return tmp_path


def _jsonl(path, rows):
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n")
    return path


def test_refcoco_boxes_in_both_conventions(folder):
    rows = [
        {"image": "a.png", "expression": "red thing", "bbox": [1, 2, 3, 4]},
        {"image": "img/b.png", "sent": "<image>blue thing", "bbox": [1.4, 2.6, 10, 5]},
        {"image": "a.png", "problem": "left one", "solution": "<answer>[5, 6, 7, 8]</answer>"},
        {"image": "a.png", "expression": "flat", "bbox": [5, 5, 0, 3]},
    ]
    path = _jsonl(folder / "refcoco.jsonl", rows)
    xywh = load_records(path, format="refcoco", bbox_format="xywh", domain="ground")
    # xywh: [1, 2, 3, 4] -> x2 = 1 + 3 = 4, y2 = 2 + 4 = 6; [1.4, 2.6, 10, 5] -> x2 = 11.4,
    # y2 = 7.6, rounded [1, 3, 11, 8]; the zero-width row [5, 5, 0, 3] is skipped.
    assert [r.answer for r in xywh.records] == ["[1, 2, 4, 6]", "[1, 3, 11, 8]", "[5, 6, 12, 14]"]
    assert xywh.skipped == {"bad_value:bbox": 1}
    first = xywh.records[0]
    assert first.domain == "ground" and first.answer_type == "bbox"
    assert first.meta["image_size"] == (40, 30) and '"red thing"' in first.question
    assert xywh.records[1].meta["image_size"] == (20, 10)
    assert "<image>" not in xywh.records[1].question
    assert first.load_images()[0].getpixel((0, 0)) == (255, 0, 0)
    xyxy = load_records(path, format="refcoco", bbox_format="xyxy")
    # xyxy keeps the corners; [5, 5, 0, 3] has x2 < x1 and is skipped again
    assert [r.answer for r in xyxy.records] == ["[1, 2, 3, 4]", "[1, 3, 10, 5]", "[5, 6, 7, 8]"]


def test_multiple_choice_answers_become_letters(folder):
    rows = [
        {"image": "a.png", "question": "Which?", "choices": ["cat", "dog", "cow"], "answer": 2,
         "hint": "A farm."},
        {"image": "a.png", "question": "Which?", "choices": ["cat", "dog"], "answer": "b"},
        {"image": "a.png", "question": "Which?", "choices": ["cat", "dog"], "answer": "dog"},
        {"image": "a.png", "problem": "Angle? A. 30 B. 60", "solution": "<answer> B </answer>"},
        {"image": "a.png", "question": "Which?", "choices": ["cat", "dog"], "answer": 5},
        {"image": None, "question": "Text only?", "choices": ["x", "y"], "answer": 0},
        {"image": "a.png", "question": "Which?", "choices": "cat, dog", "answer": 0},
    ]
    result = load_records(_jsonl(folder / "sqa.jsonl", rows), format="scienceqa")
    assert [r.answer for r in result.records] == ["C", "B", "B", "B"]
    assert result.skipped == {"bad_value:answer": 1, "missing_image": 1,
                              "wrong_type:choices": 1}
    first = result.records[0]
    assert first.answer_type == "choice" and first.meta["choices"] == ["cat", "dog", "cow"]
    assert first.question.startswith("Context: A farm.\nWhich?\nOptions:\nA. cat\nB. dog\nC. cow")
    assert result.records[3].meta == {}  # GeoQA-style: options already inside the question
    text_ok = load_records(folder / "sqa.jsonl", format="choice", require_image=False)
    assert len(text_ok.records) == 5 and text_ok.records[4].images == []


def test_clevr_count_open_qa_and_llava(folder):
    clevr = _jsonl(folder / "clevr.jsonl", [
        {"image": "a.png", "question": "How many cubes?", "answer": 3},
        {"image": "a.png", "problem": "How many balls?", "solution": "<answer> 4 </answer>"},
        {"image": "a.png", "question": "How many?", "answer": "three"},
    ])
    result = load_records(clevr, format="clevr")
    assert [(r.answer, r.answer_type) for r in result.records] == [("3", "count"), ("4", "count")]
    assert result.skipped == {"bad_value:answer": 1}

    qa = _jsonl(folder / "thinklite.jsonl", [
        {"image": "a.png", "problem": "<image>What is 2+3?", "answer": "5"},
    ])
    assert load_records(qa, format="thinklite").records[0].answer_type == "math"
    record = load_records(qa, format="open_qa", answer_type="number").records[0]
    assert (record.question, record.answer, record.answer_type) == ("What is 2+3?", "5", "number")

    conversations = [
        {"id": "ocr-1", "image": "img/b.png", "conversations": [
            {"from": "human", "value": "<image>\nWhat is written?"},
            {"from": "gpt", "value": "STOP"},
            {"from": "human", "value": "Colour?"}, {"from": "gpt", "value": "red"}]},
        {"id": "ocr-2", "image": "a.png", "conversations": [{"from": "gpt", "value": "hi"}]},
    ]
    path = folder / "llava.json"  # LLaVA ships one JSON list, not JSON lines
    path.write_text(json.dumps(conversations))
    result = load_records(path, format="llava_ocr", domain="ocr")
    r = result.records[0]
    assert (r.id, r.question, r.answer, r.answer_type) == ("ocr-1", "What is written?", "STOP",
                                                           "text")
    assert r.meta["turns"] == 4 and result.skipped == {"bad_value:conversations": 1}


def test_bad_rows_are_skipped_counted_and_logged(folder, caplog):
    rows = [
        {"image": "a.png", "question": "ok?", "answer": "yes", "answer_type": "yesno"},
        {"image": "missing.png", "question": "q", "answer": "a", "answer_type": "text"},
        {"image": "corrupt.png", "question": "q", "answer": "a", "answer_type": "text"},
        {"image": "a.png", "answer": "a", "answer_type": "text"},
        {"image": "a.png", "question": 7, "answer": "a", "answer_type": "text"},
        {"image": "a.png", "question": "q", "answer": "a", "answer_type": "essay"},
        "{not json",
        {"images": ["a.png", "img/b.png"], "question": "two?", "answer": "2",
         "answer_type": "number", "meta": {"k": 1}, "domain": "pairs"},
    ]
    path = _jsonl(folder / "mixed.jsonl", rows)
    with caplog.at_level(logging.WARNING, logger="recap.tasks.loaders"):
        result = load_records(path)
    assert result.skipped == {
        "bad_json": 1, "bad_value:answer_type": 1, "missing_field:question": 1,
        "missing_image": 1, "unreadable_image": 1, "wrong_type:question": 1,
    }
    assert result.n_skipped == 6 and len(result.records) == 2
    assert result.records[0].id == "mixed-0" and result.records[0].domain == "mixed"
    assert result.records[1].domain == "pairs" and len(result.records[1].images) == 2
    assert "skipped 6 rows" in caplog.text and "unreadable_image: 1" in caplog.text
    assert len(load_records(path, limit=1).records) == 1


def test_no_usable_row_is_a_clear_error(folder):
    path = _jsonl(folder / "empty.jsonl", [
        {"image": "missing.png", "question": "q", "answer": "a", "answer_type": "text"},
        {"image": "corrupt.png", "question": "q", "answer": "a", "answer_type": "text"},
    ])
    with pytest.raises(ValueError, match=r"empty\.jsonl.*missing_image.*unreadable_image"):
        load_records(path)
    with pytest.raises(ValueError, match=r"known: .*refcoco"):
        load_records(path, format="coco")
    with pytest.raises(ValueError, match=r"unknown options \[.box_format.\]"):
        load_records(path, format="refcoco", box_format="xywh")
    with pytest.raises(FileNotFoundError):
        load_records(folder / "nope.jsonl")


def test_hf_dataset_saved_to_disk(folder):
    datasets = pytest.importorskip("datasets")
    features = datasets.Features({
        "image": datasets.Image(), "question": datasets.Value("string"),
        "answer": datasets.Value("int64"),
    })
    good = Image.new("RGB", (12, 9), (0, 255, 0))
    data = {
        "image": [good, {"bytes": b"garbage", "path": None}, None, good],
        "question": ["How many?", "How many?", "How many?", "How many now?"],
        "answer": [3, 2, 1, 0],
    }
    ds = datasets.Dataset.from_dict(data, features=features)
    ds.save_to_disk(str(folder / "hf"))
    result = load_records(folder / "hf", format="clevr_count", domain="count")
    assert [r.answer for r in result.records] == ["3", "0"]
    assert result.skipped == {"missing_image": 1, "unreadable_image": 1}
    assert result.records[0].load_images()[0].getpixel((0, 0)) == (0, 255, 0)

    datasets.DatasetDict({"train": ds, "test": ds.select([0])}).save_to_disk(str(folder / "dd"))
    with pytest.raises(ValueError, match="choose split= among \\['test', 'train'\\]"):
        load_records(folder / "dd", format="clevr_count")
    assert len(load_records(folder / "dd", format="clevr_count", split="test").records) == 1
