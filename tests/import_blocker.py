"""A Python where some packages look never installed: a ``sitecustomize`` with a meta-path finder.

Put the folder :func:`blocking_site` writes first on ``PYTHONPATH`` of a child interpreter: there
``import torch`` (say) raises ``ModuleNotFoundError`` as on a machine without it, although the venv
has it. Used for the "stock QGIS" probe and for the core tests that must run without torch.
"""
from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

SITECUSTOMIZE = '''
import sys

BLOCKED = {blocked!r}


class _Blocker:
    """Make the blocked top-level packages look not installed."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None


sys.meta_path.insert(0, _Blocker())
'''


def blocking_site(folder: Path, blocked: Sequence[str]) -> Path:
    """Create ``folder`` holding a ``sitecustomize.py`` that blocks the top-level packages
    ``blocked`` (e.g. ``("torch",)``) in every interpreter started with it on ``PYTHONPATH``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "sitecustomize.py").write_text(SITECUSTOMIZE.format(blocked=tuple(blocked)), encoding="utf-8")
    return folder


def env_with_site(env: Mapping[str, str], site: Path) -> dict[str, str]:
    """A copy of ``env`` with ``site`` first on ``PYTHONPATH`` (before what was there)."""
    return dict(env, PYTHONPATH=os.pathsep.join([str(site), *[p for p in [env.get("PYTHONPATH")] if p]]))
