# One image, one target per service: `docker build --target intake .`

# The console's browser assets (htmx), from npm with the lockfile; served by mediation itself.
FROM node:20-slim AS assets
WORKDIR /assets
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund --ignore-scripts

FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 BIND_HOST=0.0.0.0
WORKDIR /app
COPY requirements/runtime.lock requirements/runtime.lock
RUN pip install --no-cache-dir -r requirements/runtime.lock
COPY libs libs
COPY services services
RUN pip install --no-cache-dir --no-deps -e libs/fengqiao -e services/intake -e services/triage \
        -e services/mediation -e services/notify
COPY --from=assets /assets/node_modules node_modules
ENV FENGQIAO_ASSETS_DIR=/app/node_modules
RUN useradd --system --uid 10001 fengqiao
USER 10001
# No entrypoint: a container runs whole commands, so operators type the documented ones as they
# are (`docker compose run --rm mediation fengqiao staff import /setup/staff.xlsx`).
HEALTHCHECK --interval=10s --timeout=3s CMD python -c "import os,urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('SERVICE_PORT', '8080'))"

FROM base AS init
CMD ["fengqiao", "topics", "create"]

FROM base AS intake
ENV SERVICE_PORT=8080
EXPOSE 8080 2525
CMD ["fengqiao", "serve", "intake"]

FROM base AS mediation
ENV SERVICE_PORT=8081
EXPOSE 8081
CMD ["fengqiao", "serve", "mediation"]

FROM base AS triage
ENV SERVICE_PORT=8082
EXPOSE 8082
CMD ["fengqiao", "serve", "triage"]

FROM base AS notify
ENV SERVICE_PORT=8083
EXPOSE 8083
CMD ["fengqiao", "serve", "notify"]
