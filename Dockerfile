# One image for every PortalPay process: `portalpay worker`, `portalpay portal`, `portalpay db migrate`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --create-home --uid 10001 portalpay

WORKDIR /opt/portalpay-src
COPY pyproject.toml ./
COPY domain/ domain/
COPY workflows/ workflows/
COPY activities/ activities/
COPY workers/ workers/
COPY starters/ starters/
COPY infra/ infra/
COPY migrations/ migrations/
RUN pip install . && rm -rf build ./*.egg-info

# Run from the home directory, not the source tree: the installed package is what runs.
USER portalpay
WORKDIR /home/portalpay
ENTRYPOINT ["portalpay"]
CMD ["--help"]
