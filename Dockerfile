# nipype-icainr: the codec's command line in a container (CPU build of PyTorch).
# The BIDS-App entrypoint comes with the BIDS-App work; for now the image runs `icainr`.
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

WORKDIR /opt/nipype-icainr
# CPU wheel first, so that the unpinned requirement in setup.cfg never pulls a CUDA build
RUN pip install --index-url https://download.pytorch.org/whl/cpu "torch==2.*"
COPY setup.cfg pyproject.toml README.md ./
COPY nipype_icainr ./nipype_icainr
COPY workflows ./workflows
COPY bids_app ./bids_app
RUN pip install .

RUN useradd --create-home icainr
USER icainr
WORKDIR /data
ENTRYPOINT ["icainr"]
CMD ["--help"]
