# One image for every PortalPay process: `portalpay worker`, `portalpay portal`, `portalpay db migrate`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 portalpay \
    # DejaVu draws the masking bullets (•) in the proof-of-authorization PDF.
    && apt-get update && apt-get install -y --no-install-recommends fonts-dejavu-core \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/portalpay-src
# The pinned versions of what ships (make lock), then the package itself without resolving again.
COPY requirements-prod.lock ./
RUN pip install -r requirements-prod.lock
COPY pyproject.toml ./
COPY domain/ domain/
COPY workflows/ workflows/
COPY activities/ activities/
COPY workers/ workers/
COPY starters/ starters/
COPY infra/ infra/
COPY migrations/ migrations/
COPY sandbox_processor/ sandbox_processor/
RUN pip install --no-deps . && rm -rf build ./*.egg-info

# Run from the home directory, not the source tree: the installed package is what runs.
USER portalpay
WORKDIR /home/portalpay
ENTRYPOINT ["portalpay"]
CMD ["--help"]
