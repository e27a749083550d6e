"""The README's Python examples run as written (each ```python block, in order, in one fresh interpreter)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def test_the_readme_has_python_examples():
    assert len(python_blocks()) >= 1


def test_the_readme_python_examples_run_as_written(tmp_path):
    """Run outside the checkout, as a user would after installing."""
    script = "\n\n".join(python_blocks())
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert run.returncode == 0, f"README example failed:\n{run.stderr[-3000:]}"
