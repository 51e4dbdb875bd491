# nipype-icainr BIDS App:  docker run --rm -v /data:/data:ro -v /out:/out IMAGE /data /out participant
#
# CPU image (default, without PyTorch):  docker build -t nipype-icainr .
#   (or tools/build_container.sh, which also builds with podman where no registry is reachable)
# With the network and paper presets (PyTorch), CPU:  --build-arg EXTRAS=network
# CUDA image:  docker build -t nipype-icainr:cuda --build-arg EXTRAS=network \
#                --build-arg BASE_IMAGE=nvidia/cuda:12.6.3-runtime-ubuntu24.04 \
#                --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu126 .
ARG BASE_IMAGE=python:3.11-slim
FROM ${BASE_IMAGE}

ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG TORCH_VERSION=2.13.0

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    MPLCONFIGDIR=/tmp/matplotlib \
    ICAINR_CONTAINER_TYPE=docker

SHELL ["/bin/bash", "-o", "pipefail", "-c"]

# CUDA base images come without Python; the python: images have it already
# hadolint ignore=DL3008
RUN if ! command -v python3 >/dev/null; then \
        apt-get update && \
        apt-get install -y --no-install-recommends python3 python3-venv && \
        rm -rf /var/lib/apt/lists/*; \
    fi && \
    python3 -m venv /opt/venv

# EXTRAS=network: torch first, from the chosen index (PyPI for its dependencies), so that
# setup.cfg's range never pulls another build. Without it the image is about half the
# size and the default, glm and decoding presets (no PyTorch) are what it runs.
ARG EXTRAS=
RUN if [ -n "${EXTRAS}" ]; then \
        pip install --extra-index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}"; \
    fi

WORKDIR /opt/nipype-icainr
COPY setup.cfg pyproject.toml README.md ./
COPY nipype_icainr ./nipype_icainr
COPY workflows ./workflows
COPY bids_app ./bids_app
# the package itself from this folder (its dependencies' ranges are in setup.cfg)
# hadolint ignore=DL3013
RUN pip install ".${EXTRAS:+[${EXTRAS}]}" && \
    useradd --create-home --uid 1000 icainr

ARG VERSION
ENV ICAINR_CONTAINER_TAG=nipype-icainr:${VERSION:-unknown}
USER 1000
WORKDIR /tmp
ENTRYPOINT ["icainr-bids"]
CMD ["--help"]
