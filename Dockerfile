# syntax=docker/dockerfile:1
# align-search: multimodal image search with an ALIGN-style dual encoder and an HNSW index.
#   docker build -t align-search .
#   docker run -p 8080:8080 -v align-data:/app/index-data align-search

# --- build: native modules (hnswlib-node, better-sqlite3, onnxruntime-node, sharp) ------------------
FROM node:20-bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# the image's npm 10 ignores allowScripts: tell onnxruntime-node's install script not to fetch CUDA libraries
ENV ONNXRUNTIME_NODE_INSTALL=skip
# all dependencies first: esbuild (a dev dependency) builds the web page
RUN npm ci --no-audit --no-fund
COPY . .
RUN if [ -f web/build.ts ]; then npm run build:web; fi \
 && npm prune --omit=dev --no-audit --no-fund \
 && mkdir -p web/dist

# --- runtime -------------------------------------------------------------------------------------------
FROM node:20-bookworm-slim AS runtime
ENV PORT=8080 \
    HOST=0.0.0.0 \
    UV_THREADPOOL_SIZE=6 \
    DATA_DIR=/app/index-data \
    IMPORT_DIR=/app/import
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json /app/package-lock.json ./
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/src ./src
COPY --from=build --chown=node:node /app/models ./models
COPY --from=build --chown=node:node /app/demo ./demo
COPY --from=build --chown=node:node /app/web/dist ./web/dist
COPY --from=build --chown=node:node /app/openapi.yaml ./openapi.yaml
RUN mkdir -p /app/index-data /app/import && chown node:node /app/index-data /app/import
USER node
VOLUME /app/index-data
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# tsx is a runtime dependency: the TypeScript sources run as they are
CMD ["node", "--import", "tsx", "src/server.ts"]
