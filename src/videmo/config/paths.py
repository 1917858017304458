"""How a path of a config was found, for the errors that name it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from videmo.config.options import Config


def given(cfg: Config, raw: str) -> str:
    """How a relative config path was resolved ('' for an absolute one), for error messages."""
    if Path(raw).expanduser().is_absolute():
        return ""
    return f" ('{raw}' is relative to the config file's folder {cfg.base_dir})"
