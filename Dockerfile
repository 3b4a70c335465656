# klaviyo-etl in a container: small (slim Node LTS, production dependencies only), non-root, multi-stage.
# Not built by this repository's CI (its machine has no container daemon); test/unit/repo/dockerfile.test.ts checks
# this file statically (pinned base, non-root USER, multi-stage). Build and run (docs/scheduling.md):
#
#   docker build -t klaviyo-etl .
#   docker run --rm -e KLAVIYO_API_KEY -v "$PWD/pipelines:/pipelines:ro" -v klaviyo-etl-state:/state \
#     klaviyo-etl run /pipelines/customers.yaml
#
# The base image is pinned to a full Node LTS version; pin its digest too (node:24.11.1-bookworm-slim@sha256:…) in a
# registry you control.
ARG NODE_IMAGE=node:24.11.1-bookworm-slim

FROM ${NODE_IMAGE} AS build
WORKDIR /build
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --ignore-scripts
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npm run build && npm prune --omit=dev --no-audit --no-fund

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production \
    KLAVIYO_ETL_STATE_DIR=/state
WORKDIR /app
COPY --from=build /build/node_modules ./node_modules
COPY --from=build /build/dist ./dist
COPY package.json README.md ./
COPY bin ./bin
COPY schema ./schema
COPY pipelines/examples ./pipelines/examples
COPY fixtures/customers.csv ./fixtures/customers.csv
COPY fixtures/orders/shopify-orders.csv ./fixtures/orders/shopify-orders.csv
RUN mkdir -p /state /pipelines && chown node:node /state
# the image's unprivileged user (uid 1000); checkpoints and rejects go to /state (mount a volume there)
USER node
VOLUME ["/state"]
ENTRYPOINT ["node", "/app/bin/klaviyo-etl.js"]
CMD ["--help"]
