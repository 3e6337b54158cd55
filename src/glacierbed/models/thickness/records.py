"""A thickness network's record, the JSON beside its weights: read one way by torch and by onnxruntime.

Torch-free, so the model store can tell a thickness network from an inpainter, and the
ONNX engine can find its export, without importing torch.
"""

from __future__ import annotations

import json
from pathlib import Path

from glacierbed.core.errors import CorruptFileError, DataNotFoundError


def read_record(path: str | Path) -> dict:
    """The JSON record beside a thickness network's weights ``path`` (config, training, ``weights_sha256``)."""
    rec_path = Path(path).with_suffix(".json")
    if not Path(path).exists() or not rec_path.exists():
        raise DataNotFoundError(f"{path}: thickness-network weights or their record {rec_path.name} not found")
    try:
        return json.loads(rec_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise CorruptFileError(f"{rec_path}: not valid JSON ({exc})") from None


def measured_groups(record: dict) -> frozenset[str]:
    """The glacier identities (RGI 6 groups of the measured table) a network was fine-tuned on
    (``finetuned_on_measured.groups`` of its record): its scores on them are in-sample."""
    return frozenset(str(g) for g in (record.get("finetuned_on_measured") or {}).get("groups", ()))


def is_thickness_net(path: str | Path) -> bool:
    """Whether ``path`` has a thickness-network record beside it."""
    rec = Path(path).with_suffix(".json")
    try:
        return rec.exists() and json.loads(rec.read_text()).get("kind") == "thickness_net"
    except (OSError, ValueError):
        return False
