# Zoo Studio in hosted mode, for a Hugging Face Docker Space or any host (README: "In a container").
#
#   docker build -t zoo-studio .                                                  # CPU
#   docker build -t zoo-studio-gpu --build-arg REQUIREMENTS=requirements-gpu.txt .  # GPU: TensorFlow + CUDA
#   docker build -t zoo-studio-jax --build-arg EXTRA="jax[cuda12]==0.10.2" --build-arg KERAS_BACKEND=jax .
#
# The GPU builds bring CUDA's libraries from PyPI (no CUDA base image needed); the host gives the
# NVIDIA driver (docker run --gpus all). BASE may name any Debian-like image with python3 (3.11)
# and its venv module, e.g. one made locally with debootstrap where no registry is reachable.
ARG BASE=python:3.11-slim
FROM ${BASE}

ARG REQUIREMENTS=requirements.txt
ARG EXTRA=""
ARG KERAS_BACKEND=tensorflow

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# The dependencies first, so that a change of the code rebuilds only the last layers.
COPY requirements*.txt /app/
RUN python3 -m venv /opt/venv \
    && pip install -r "/app/${REQUIREMENTS}" ${EXTRA}

# Spaces run the container as uid 1000; /data is where a Space's persistent storage (or a host's
# volume) is mounted, and ZOO_HOME (runs, models, logs, uploads) lives there.
RUN useradd --create-home --uid 1000 user \
    && mkdir -p /data/zoo-studio \
    && chown -R user:user /data
COPY --chown=user:user . /app
WORKDIR /app
USER 1000

ENV HOME=/home/user \
    ZOO_MODE=hosted \
    ZOO_HOME=/data/zoo-studio \
    KERAS_BACKEND=${KERAS_BACKEND}
VOLUME /data

# 7860 on a Space (SPACE_ID set), 8501 elsewhere, STREAMLIT_SERVER_PORT when set (zoo/app/container.py).
EXPOSE 8501 7860
HEALTHCHECK --interval=30s --timeout=20s --start-period=60s \
    CMD ["python", "-m", "zoo.app.container", "health"]
CMD ["python", "-m", "zoo.app.container", "serve"]
