"""The container images start and work: runs scripts/check_images.sh on images built here (`make images`).

Skipped, quickly, where buildah is absent (CI) or the images have not been built: building them takes many minutes
and a ~6 GB download of torch's CUDA wheels, so no test builds them.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
IMAGES = (
    os.environ.get("SERVER_IMAGE", "localhost/hardcore-nas/latency-server:latest"),
    os.environ.get("TRAINER_IMAGE", "localhost/hardcore-nas/trainer:latest"),
)


def _missing_images() -> list[str]:
    proc = subprocess.run(["buildah", "images", "--format", "{{.Name}}:{{.Tag}}"], capture_output=True, text=True,
                          timeout=60)
    listed = set(proc.stdout.split()) if proc.returncode == 0 else set()
    return [image for image in IMAGES if image not in listed]


@pytest.mark.slow
def test_images_start_and_pass_their_checks() -> None:
    if shutil.which("buildah") is None:
        pytest.skip("buildah is not installed: build the images with `make images` (scripts/build_images.sh), "
                    "then run scripts/check_images.sh")
    missing = _missing_images()
    if missing:
        pytest.skip(f"images not built here ({', '.join(missing)}): run `make images` first")
    proc = subprocess.run([str(ROOT / "scripts" / "check_images.sh")], cwd=ROOT, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
