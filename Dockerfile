# The IOC-GIS image: web app, CLI and (later) the ETL scheduler. Assets come from npm at build time.
FROM node:20-bookworm-slim AS assets
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM python:3.12-slim-bookworm
RUN apt-get update && apt-get install -y --no-install-recommends postgresql-client \
    && rm -rf /var/lib/apt/lists/* && useradd --system --home /app iocgis \
    && install -d -o iocgis /var/lib/iocgis
WORKDIR /app
# Editable install: the code finds layers/, postgis/ and data/ beside it, as in a checkout.
COPY pyproject.toml README.md pygeoapi-config.yml ./
COPY gis_core gis_core
COPY webmap webmap
COPY etl etl
COPY layers layers
COPY postgis postgis
COPY data data
RUN pip install --no-cache-dir -e .
COPY --from=assets /app/node_modules node_modules
ENV IOCGIS_HOST=0.0.0.0 IOCGIS_ASSETS_DIR=/app/node_modules
USER iocgis
EXPOSE 8080
ENV IOCGIS_PORT=8080
CMD ["iocgis", "serve", "--workers", "4"]
