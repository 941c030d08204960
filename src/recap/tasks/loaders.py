"""Load external datasets into Records: JSONL / JSON files and Hugging Face datasets on disk.

``load_records(path, format, domain)`` reads

- a ``.jsonl`` file (one JSON object per line) or a ``.json`` file holding a list of objects
  (the LLaVA layout), image paths relative to the file's folder (or absolute);
- a folder written by ``datasets.Dataset.save_to_disk`` / ``DatasetDict.save_to_disk``
  (``datasets.load_from_disk``; image columns may be ``Image`` features or path strings,
  relative paths resolved against the folder);

and maps each row with one of the :data:`FORMATS` (or an :data:`ALIASES` name), the row layouts
of :mod:`recap.tasks.formats` (RefCOCO, GeoQA / ScienceQA, CLEVR counting, ThinkLite, LLaVA and
this project's own ``record`` layout).

Rows that cannot be used (missing or unreadable image, missing field, wrong type, unparsable
answer, bad JSON line) are skipped and counted by reason; the counts are logged as a warning and
returned in :class:`LoadResult`. A file with no usable row raises ``ValueError`` naming the file
and the reasons: a run never trains silently on nothing.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from recap.tasks.formats import (
    RowContext,
    SkipRow,
    map_choice,
    map_clevr_count,
    map_llava_ocr,
    map_open_qa,
    map_record,
    map_refcoco,
)
from recap.tasks.record import ANSWER_TYPES, Record

logger = logging.getLogger(__name__)


@dataclass
class LoadResult:
    """Records mapped from a dataset, and how many rows were skipped for which reason."""

    records: list[Record]
    skipped: dict[str, int] = field(default_factory=dict)
    path: str = ""

    @property
    def n_skipped(self) -> int:
        return sum(self.skipped.values())


RowMapper = Callable[[dict[str, Any], RowContext], Record]

FORMATS: dict[str, tuple[RowMapper, dict[str, Any]]] = {
    # name: (mapper, options with their defaults)
    "record": (map_record, {"require_image": True}),
    "refcoco": (map_refcoco, {"require_image": True, "bbox_format": "xyxy"}),
    "choice": (map_choice, {"require_image": True}),
    "clevr_count": (map_clevr_count, {"require_image": True}),
    "open_qa": (map_open_qa, {"require_image": True, "answer_type": "math"}),
    "llava_ocr": (map_llava_ocr, {"require_image": True}),
}
ALIASES: dict[str, str] = {
    "geoqa": "choice", "scienceqa": "choice", "clevr": "clevr_count", "thinklite": "open_qa",
    "llava": "llava_ocr",
}


# ---------------------------------------------------------------------------- readers


def _read_json_file(path: Path) -> Iterator[dict[str, Any] | None]:
    """Rows of a .jsonl (one object per line) or .json (a list of objects); None = bad row."""
    if path.suffix == ".json":
        data = json.loads(path.read_text())
        if not isinstance(data, list):
            raise ValueError(f"{path}: a .json dataset must hold a list of rows")
        yield from (row if isinstance(row, dict) else None for row in data)
        return
    with path.open() as f:
        for line in f:
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                row = None
            yield row if isinstance(row, dict) else None


def _read_hf(path: Path, split: str | None) -> Iterator[dict[str, Any] | None]:
    """Rows of a ``save_to_disk`` folder, image columns read undecoded (decoded per row)."""
    import datasets

    ds = datasets.load_from_disk(str(path))
    if isinstance(ds, datasets.DatasetDict):
        if split is None and len(ds) == 1:
            split = next(iter(ds))
        if split not in ds:
            raise ValueError(f"{path}: choose split= among {sorted(ds)} (got {split!r})")
        ds = ds[split]
    for name, feature in ds.features.items():
        # Undecoded images let an unreadable one be skipped and counted instead of failing
        # the whole row access inside datasets.
        if isinstance(feature, datasets.Image):
            ds = ds.cast_column(name, datasets.Image(decode=False))
        elif isinstance(feature, datasets.List) and isinstance(feature.feature, datasets.Image):
            ds = ds.cast_column(name, datasets.List(datasets.Image(decode=False)))
    yield from ds


def load_records(
    path: str | Path,
    format: str = "record",
    domain: str | None = None,
    limit: int | None = None,
    split: str | None = None,
    **options: Any,
) -> LoadResult:
    """Map the rows of a JSONL/JSON file or a HF dataset folder into Records.

    Args:
        path: a ``.jsonl`` / ``.json`` file or a ``save_to_disk`` folder.
        format: a key of :data:`FORMATS` (or an alias such as ``"scienceqa"``).
        domain: the records' domain (default: the file or folder name).
        limit: stop after this many usable records.
        split: the split of a saved ``DatasetDict``.
        options: format options (see :data:`FORMATS`), e.g. ``bbox_format="xywh"``.

    Returns:
        ``LoadResult(records, skipped={reason: count})``; skipped rows are also logged.

    Raises:
        ValueError: unknown format or option, or no usable row (the message names the file and
        the skip reasons).
    """
    path = Path(path)
    name = ALIASES.get(format, format)
    if name not in FORMATS:
        raise ValueError(f"unknown format {format!r}; known: {sorted(FORMATS) + sorted(ALIASES)}")
    mapper, defaults = FORMATS[name]
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise ValueError(f"format {name!r}: unknown options {unknown}; known: {sorted(defaults)}")
    if options.get("bbox_format", "xyxy") not in ("xyxy", "xywh"):
        raise ValueError(f"bbox_format must be 'xyxy' or 'xywh', got {options['bbox_format']!r}")
    if options.get("answer_type", "math") not in ANSWER_TYPES:
        raise ValueError(f"answer_type must be one of {ANSWER_TYPES}")
    if not path.exists():
        raise FileNotFoundError(f"dataset not found: {path}")
    opts = defaults | options
    domain = domain or path.stem
    if path.is_dir():
        rows, root = _read_hf(path, split), path
    else:
        rows, root = _read_json_file(path), path.parent
    records: list[Record] = []
    skipped: Counter[str] = Counter()
    for index, row in enumerate(rows):
        if limit is not None and len(records) >= limit:
            break
        if row is None:
            skipped["bad_json"] += 1
            continue
        row_id = str(row["id"]) if isinstance(row.get("id"), (str, int)) else f"{domain}-{index}"
        try:
            records.append(mapper(row, RowContext(row_id, domain, root, opts)))
        except SkipRow as skip:
            skipped[skip.reason] += 1
    result = LoadResult(records, dict(sorted(skipped.items())), str(path))
    if not records:
        raise ValueError(
            f"{path}: no usable rows for format {name!r} (skipped: {result.skipped or 'none'})"
        )
    if skipped:
        logger.warning("%s: skipped %d rows (%s); kept %d", path, result.n_skipped,
                       ", ".join(f"{k}: {v}" for k, v in result.skipped.items()), len(records))
    return result
