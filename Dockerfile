# The site (and, with another CMD, `loopmark lambda-local`) as one image: FFmpeg and gifsicle come
# from their wheels, so no system packages are needed. Not built on the development machines
# (they have no Docker engine); keep it in step with setup.cfg and the Makefile. Run it with
# LOOPMARK_SECRET_KEY set (32+ characters): the site refuses to start without one outside debug.

FROM python:3.11-slim AS build
WORKDIR /src
COPY setup.cfg pyproject.toml README.md ./
COPY loopmark ./loopmark
RUN python -m venv /venv && /venv/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --create-home --uid 10001 loopmark
COPY --from=build /venv /venv
WORKDIR /app
# Fonts, CSS, JS and page templates are package data inside the venv; only the demo templates
# (brand data, not code) are copied beside it.
COPY templates_video ./templates_video
ENV PATH=/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    LOOPMARK_DATA_DIR=/data \
    LOOPMARK_TEMPLATES_DIR=/app/templates_video
RUN mkdir /data && chown loopmark /data
USER loopmark
EXPOSE 8000
CMD ["loopmark", "serve", "--host", "0.0.0.0", "--port", "8000"]
