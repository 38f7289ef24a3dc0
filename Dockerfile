# syntax=docker/dockerfile:1
# Node 22 LTS (Node 20 reaches its end of life in April 2026); every dependency supports it (better-sqlite3 12
# has prebuilt binaries for 22). package.json keeps ">=20.19": development and CI machines still run 20.
# Build stage: install dependencies (better-sqlite3 compiles a native addon) and typecheck.
FROM node:22-bookworm-slim AS build
WORKDIR /app
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 make g++ \
 && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY bin ./bin
COPY config ./config
COPY scripts/build.mjs ./scripts/build.mjs
COPY src ./src
RUN npx tsc --noEmit -p tsconfig.json || (echo "typecheck failed" && exit 1)
# The service runs the compiled JavaScript (dist/), as `npm start` does: no TypeScript loader at run time.
RUN node scripts/build.mjs
RUN npm prune --omit=dev

# Runtime stage: no compilers, a non-root user, only what the service runs.
FROM node:22-bookworm-slim
ENV NODE_ENV=production \
    TRACKGATE_HOST=0.0.0.0 \
    TRACKGATE_PORT=8080 \
    TRACKGATE_DATABASE_URL=sqlite:/var/lib/trackgate/trackgate.db \
    TRACKGATE_DATA_DIR=/var/lib/trackgate
WORKDIR /app
RUN groupadd --system --gid 10001 trackgate \
 && useradd --system --uid 10001 --gid trackgate --home-dir /var/lib/trackgate --shell /usr/sbin/nologin trackgate \
 && mkdir -p /var/lib/trackgate && chown trackgate:trackgate /var/lib/trackgate
COPY --from=build --chown=root:root /app/node_modules ./node_modules
COPY --chown=root:root package.json ./
COPY --chown=root:root config ./config
COPY --from=build --chown=root:root /app/dist ./dist
USER trackgate
VOLUME ["/var/lib/trackgate"]
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
  CMD node -e "fetch('http://127.0.0.1:'+(process.env.TRACKGATE_PORT||8080)+'/healthz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# A bounded V8 heap keeps the gateway's resident memory under 256 MB (BENCHMARKS.md).
ENTRYPOINT ["node", "--max-semi-space-size=8", "--max-old-space-size=160", "dist/cli/main.js"]
CMD ["serve"]
