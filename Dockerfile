# syntax=docker/dockerfile:1
# The one image of every gongji service, with the same commands as the CLI:
#   docker run --rm gongji:dev clearinghouse
#   docker run --rm gongji:dev region --code 420100
# compose.yaml runs the whole cluster from it. PYTHON_IMAGE may name another Debian-based
# Python 3.11 with `python` on the PATH and groupadd/useradd: tests/image/ builds on a
# local bookworm made with debootstrap, where nothing can be pulled.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_INPUT=1
WORKDIR /src
# The dependencies first, named by pyproject.toml alone, in the venv /opt/gongji: a layer
# that a change of the code leaves cached, so a rebuild downloads nothing.
COPY pyproject.toml .
RUN python -m venv /opt/gongji \
    && python -c 'import tomllib; p = tomllib.load(open("pyproject.toml", "rb")); \
print(*p["build-system"]["requires"], *p["project"]["dependencies"], sep="\n")' \
        >/tmp/requirements.txt \
    && /opt/gongji/bin/pip install -r /tmp/requirements.txt \
    && site="$(/opt/gongji/bin/python -c 'import sysconfig; print(sysconfig.get_path("purelib"))')" \
    && echo /opt/gongji-app >"$site/gongji-app.pth"
# .dockerignore lets in only what `pip install .` needs. The project goes beside the venv
# (on its path through the .pth above), so the runtime stage copies the venv unchanged,
# from its cache, and only this small tree anew.
COPY . .
RUN /opt/gongji/bin/pip install . --no-deps --no-build-isolation --target /opt/gongji-app \
    && PYTHONDONTWRITEBYTECODE=1 /opt/gongji-app/bin/gongji --help >/dev/null

# Same base as the build stage, so the venv's interpreter path stays valid.
FROM ${PYTHON_IMAGE}
ENV PATH=/opt/gongji-app/bin:/opt/gongji/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    GONGJI_DATA_DIR=/data \
    GONGJI_METRICS_HOST=0.0.0.0 \
    GONGJI_METRICS_PORT=9464
RUN groupadd --system --gid 10001 gongji \
    && useradd --system --uid 10001 --gid gongji --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin gongji \
    && mkdir /data \
    && chown gongji:gongji /data
COPY --from=build /opt/gongji /opt/gongji
COPY --from=build /opt/gongji-app /opt/gongji-app
# Numeric, so orchestrators can verify "not root" without reading /etc/passwd.
USER 10001:10001
WORKDIR /data
# A named volume mounted here starts out owned by gongji, copied from the image.
VOLUME ["/data"]
EXPOSE 9464
ENTRYPOINT ["gongji"]
CMD ["--help"]
