"""Torch files read safely: plain data only, so that no file glacierbed reads can run code.

Every ``torch.load`` in glacierbed goes through :func:`load_plain`, which uses
``weights_only=True``: a file may hold tensors, numbers, strings, ``None`` and lists,
tuples and dicts of them, nothing else. A file whose pickle would call a function or build
another object (``os.system``, a class of its own) is refused before anything in it runs,
with a one-line :class:`~glacierbed.core.errors.CorruptFileError` naming the file; so is a
file that is no torch file at all. What glacierbed writes (weights, training checkpoints)
holds only such plain data, configs as dicts of lists.
"""

from __future__ import annotations

import pickle
import re
from pathlib import Path
from typing import Any

import torch

from glacierbed.core.atomic import replacing
from glacierbed.core.errors import CorruptFileError, DataNotFoundError

#: what a refused file is told it may hold
PLAIN = "tensors, numbers, strings, lists and dicts"


def _reason(exc: BaseException) -> str:
    """The informative line of torch's (multi-line) refusal, shortened."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", str(exc))  # torch bolds parts of its message
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    hit = next((ln for ln in lines if "GLOBAL" in ln or "nsupported" in ln), lines[-1] if lines else type(exc).__name__)
    return hit[:200]


def load_plain(path: str | Path, what: str = "torch file") -> Any:
    """``torch.load(path, weights_only=True)`` on the CPU, with one-line errors naming ``path``."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{path}: {what} not found")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "GLOBAL" in str(exc):  # a function or class to import (pickle opcode GLOBAL): what runs code
            raise CorruptFileError(f"{path}: refused to load ({what}): it holds more than {PLAIN}, and loading "
                                   f"it could run code: {_reason(exc)}") from None
        raise CorruptFileError(f"{path}: not a readable {what} ({_reason(exc)})") from None
    except (RuntimeError, KeyError, EOFError, ValueError, IndexError, TypeError, AttributeError) as exc:
        raise CorruptFileError(f"{path}: not a readable {what} ({type(exc).__name__}: {_reason(exc)})") from None


def save_plain(obj: Any, path: str | Path) -> Path:
    """``torch.save`` atomically (a reader never sees half a file)."""
    path = Path(path)
    with replacing(path) as tmp:
        torch.save(obj, tmp)
    return path


def state_copy(net: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The network's state dict, detached copies (what weights files hold)."""
    return {k: v.detach().clone() for k, v in net.state_dict().items()}
