# syntax=docker/dockerfile:1
#
# Images for Kubernetes (deploy/kubernetes/, docs/kubernetes.md):
#
#   docker build -t quillman .                       # gateway, and workers of our own engines (the last stage)
#   docker build --target moshi -t quillman-moshi .  # Kyutai's Moshi server, for GPU worker pods
#
# test/kubernetes/dockerfile.test.ts checks this file's structure (no Docker engine runs there).

ARG NODE_IMAGE=node:20.19-bookworm-slim
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# ---- build: TypeScript to dist/, the web app to dist/web/, then production packages only ----
FROM ${NODE_IMAGE} AS build
WORKDIR /app
ENV ONNXRUNTIME_NODE_INSTALL=skip
COPY package.json package-lock.json .npmrc ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
COPY web ./web
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

# ---- moshi: Kyutai's server (python -m moshi.server), the version `quillman serve --engine moshi` uses ----
FROM ${PYTHON_IMAGE} AS moshi
ARG MOSHI_VERSION=0.2.13
RUN pip install --no-cache-dir "moshi==${MOSHI_VERSION}"
# Weights go to the cache volume (HF_HOME), not the image: 15 GB per download.
ENV HF_HOME=/models/huggingface
EXPOSE 8998
ENTRYPOINT ["python", "-m", "moshi.server"]
CMD ["--host", "0.0.0.0", "--port", "8998", "--static", "none"]

# ---- quillman: `quillman serve` (the gateway) and `quillman worker` ----
FROM ${NODE_IMAGE} AS quillman
# The cascade engine's offline speech stages (docs/cascade.md).
RUN apt-get update \
 && apt-get install -y --no-install-recommends flite pocketsphinx pocketsphinx-en-us \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
ENV NODE_ENV=production
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist ./dist
COPY bin ./bin
# The node image's unprivileged user (uid 1000), as the manifests' runAsUser expects.
USER node
EXPOSE 8000 8998
ENTRYPOINT ["node", "/app/bin/quillman.js"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
