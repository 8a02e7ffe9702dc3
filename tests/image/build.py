"""gongji's own Dockerfile, built on the engine as a user builds it."""

from __future__ import annotations

from pathlib import Path

from tests.image.engine import Engine

ROOT = Path(__file__).resolve().parents[2]
IMAGE_TAG = "gongji:image-test"
BUILD_STAGE_TAG = "gongji:image-test-build"
"""The build stage, tagged so that pruning old images keeps its layers: they are the
cache of the next build (the dependencies' layer above all)."""
LABEL = "org.gongji.image-test.build"
BUILD_TIMEOUT_S = 900.0


def build_image(engine: Engine, base: str) -> str:
    """``docker build --network host --build-arg PYTHON_IMAGE=BASE .``; the image's tag.

    Images of earlier builds, untagged now, are removed (ours only: they carry
    ``LABEL``), so a machine that builds every revision does not fill up."""
    common = ["--network", "host", "--build-arg", f"PYTHON_IMAGE={base}", "--label", LABEL]
    for target in (["--target", "build", "--tag", BUILD_STAGE_TAG], ["--tag", IMAGE_TAG]):
        engine.docker("build", *common, *target, str(ROOT), timeout_s=BUILD_TIMEOUT_S)
    engine.docker("image", "prune", "--force", "--filter", f"label={LABEL}", timeout_s=300)
    return IMAGE_TAG
