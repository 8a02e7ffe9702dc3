"""The engine and the image, once a session: the test is skipped, saying why, where no
engine can be had or the base cannot be made; a Dockerfile that does not build fails."""

from __future__ import annotations

import sys
from collections.abc import Iterator

import pytest

from tests.image.base_image import BaseUnavailable, ensure_base_image
from tests.image.build import build_image
from tests.image.engine import Engine, EngineUnavailable, close_engine, open_engine


@pytest.fixture(scope="session")
def docker_engine() -> Iterator[Engine]:
    try:
        engine = open_engine()
    except EngineUnavailable as error:
        reason = str(error)
    else:
        try:
            yield engine
        finally:
            left = close_engine(engine)
            if left:
                print(f"image test: {left}", file=sys.stderr)
        return
    pytest.skip(reason)


@pytest.fixture(scope="session")
def gongji_image(docker_engine: Engine) -> str:
    try:
        base = ensure_base_image(docker_engine)
    except BaseUnavailable as error:
        reason = str(error)
    else:
        return build_image(docker_engine, base)
    pytest.skip(reason)
