# syntax=docker/dockerfile:1
# align-search: multimodal image search with an ALIGN-style dual encoder and an HNSW index.
#   docker build -t align-search .
#   docker run -p 8080:8080 -v align-data:/app/index-data align-search
# test/main/production-build.test.ts runs this file's build steps outside Docker (no engine runs there).

# --- build: type-check, compile to dist/, build the page, then drop the dev dependencies -----------------
FROM node:20-bookworm-slim AS build
# native modules (hnswlib-node, better-sqlite3) build with node-gyp
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ ca-certificates \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json ./
# the image's npm 10 ignores allowScripts: tell onnxruntime-node's install script not to fetch CUDA libraries
ENV ONNXRUNTIME_NODE_INSTALL=skip
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run typecheck \
 && npm run build \
 && npm prune --omit=dev --no-audit --no-fund

# --- runtime: compiled JavaScript and production dependencies only -------------------------------------
FROM node:20-bookworm-slim AS runtime
ENV PORT=8080 \
    HOST=0.0.0.0 \
    UV_THREADPOOL_SIZE=6 \
    MALLOC_MMAP_THRESHOLD_=131072 \
    DATA_DIR=/app/index-data \
    IMPORT_DIR=/app/import
WORKDIR /app
COPY --from=build --chown=node:node /app/package.json /app/package-lock.json ./
COPY --from=build --chown=node:node /app/node_modules ./node_modules
COPY --from=build --chown=node:node /app/dist ./dist
COPY --from=build --chown=node:node /app/web/dist ./web/dist
COPY --from=build --chown=node:node /app/models ./models
COPY --from=build --chown=node:node /app/demo ./demo
COPY --from=build --chown=node:node /app/openapi.yaml ./openapi.yaml
RUN mkdir -p /app/index-data /app/import && chown node:node /app/index-data /app/import
USER node
VOLUME /app/index-data
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||8080)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# node is PID 1, with no shell in between: the SIGTERM of `docker stop` reaches the server's own shutdown
CMD ["node", "--enable-source-maps", "dist/main/server.js"]
