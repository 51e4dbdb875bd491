# nipype-icainr BIDS App:  docker run --rm -v /data:/data:ro -v /out:/out IMAGE /data /out participant
#
# CPU image (default):  docker build -t nipype-icainr .
# CUDA image:           docker build -t nipype-icainr:cuda \
#                         --build-arg BASE_IMAGE=nvidia/cuda:12.6.3-runtime-ubuntu24.04 \
#                         --build-arg TORCH_INDEX=https://download.pytorch.org/whl/cu126 .
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

# torch first, from the chosen index, so that setup.cfg's range never pulls another build
RUN pip install --index-url "${TORCH_INDEX}" "torch==${TORCH_VERSION}"

WORKDIR /opt/nipype-icainr
COPY setup.cfg pyproject.toml README.md ./
COPY nipype_icainr ./nipype_icainr
COPY workflows ./workflows
COPY bids_app ./bids_app
RUN pip install . && \
    useradd --create-home --uid 1000 icainr

ENV ICAINR_CONTAINER_TAG=nipype-icainr:0.1.0
USER 1000
WORKDIR /tmp
ENTRYPOINT ["icainr-bids"]
CMD ["--help"]
