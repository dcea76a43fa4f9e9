# syntax=docker/dockerfile:1
#
# Switchyard container images: one Dockerfile, one target per process.
#
#   docker build --target gateway     -t switchyard/gateway:0.1.0 .
#   docker build --target worker      -t switchyard/worker:0.1.0 .
#   docker build --target worker-cuda -t switchyard/worker-cuda:0.1.0 --platform linux/amd64 .
#   docker build --target cli         -t switchyard/cli:0.1.0 .
#
# Every process runs on Node 24 directly from the TypeScript sources (type stripping), so an image is
# the repository's runtime sources plus the production dependencies of its own service
# (`npm ci --omit=dev -w services/<service>`), with onnxruntime-node's binaries for its platform only;
# there is no build step. package.json's devDependency `node` (Node 24 for npm scripts on older systems)
# is left out with the other devDependencies: the base image is Node 24 already.
# Sizes of the node_modules trees (npm ci --omit=dev, apparent bytes): 460 MB in every image before
# this layout; now gateway 112 MB, worker 92 MB, kv-store 92 MB, cli 115 MB (worker-cuda adds the CUDA
# provider).
#
# NOTE: NODE_VERSION pins the same Node as package.json's `node` devDependency (a test checks it), so
# the images run what the tests ran.
ARG NODE_VERSION=24.21.0
# Base images by digest, so a rebuild gets the same bytes. NOTE: these digests could not be resolved on
# the machine that wrote them (no registry access there): they are the ones public pinned builds record
# for these tags (node: the multi-platform index; CUDA: the linux/amd64 manifest). Check or refresh with
# `docker buildx imagetools inspect node:24.21.0-bookworm-slim` (and the CUDA tag); a wrong digest fails
# the build at FROM, it never pulls another image.
ARG NODE_DIGEST=sha256:2fe369e969550cde8e867afc3fe370b260140cab4a23d467074295b42163d553
# CUDA 12 + cuDNN 9 runtime: what onnxruntime-node's CUDA 12 execution provider links against.
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04@sha256:59e0e4376a0f16d10b03d3a14344b80a866a1674cb4948cb318291387ac05010
# OCI labels: pass --build-arg REVISION="$(git rev-parse HEAD)" --build-arg SOURCE=<repository URL>.
ARG VERSION=0.1.0
ARG REVISION=unknown
ARG SOURCE=unknown

FROM node:${NODE_VERSION}-bookworm-slim@${NODE_DIGEST} AS node-base
ARG VERSION
ARG REVISION
ARG SOURCE
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Switchyard"

# ---------------------------------------------------------------------------------------------------
# Production dependencies. Only the manifests are copied first, so a source change reuses these layers.
# Every workspace's package.json must be listed (a test checks it): `npm ci` refuses a lockfile whose
# workspaces are missing.
FROM node-base AS manifests
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/cluster/package.json packages/cluster/
COPY packages/dispatch/package.json packages/dispatch/
COPY packages/engine/package.json packages/engine/
COPY packages/flags/package.json packages/flags/
COPY packages/kv-cache/package.json packages/kv-cache/
COPY packages/kv-transfer/package.json packages/kv-transfer/
COPY packages/launcher/package.json packages/launcher/
COPY packages/loadgen/package.json packages/loadgen/
COPY packages/model/package.json packages/model/
COPY packages/onnx/package.json packages/onnx/
COPY packages/routing/package.json packages/routing/
COPY packages/rpc/package.json packages/rpc/
COPY packages/telemetry/package.json packages/telemetry/
COPY services/cli/package.json services/cli/
COPY services/cli/bin services/cli/bin
COPY services/expert-worker/package.json services/expert-worker/
COPY services/gateway/package.json services/gateway/
COPY services/kv-store/package.json services/kv-store/
# Keeps only onnxruntime-node's binaries for this image's platform (linux-x64 on amd64, linux-arm64 on
# arm64): the package ships macOS and Windows ones too (≈ 220 MB that no image runs).
RUN printf '%s\n' '#!/bin/sh' 'set -eu' \
      'arch=$(node -p "process.arch")' \
      'bin=node_modules/onnxruntime-node/bin/napi-v6' \
      'test -f "$bin/linux/$arch/onnxruntime_binding.node"' \
      'find "$bin" -mindepth 1 -maxdepth 1 ! -name linux -exec rm -rf {} +' \
      'find "$bin/linux" -mindepth 1 -maxdepth 1 ! -name "$arch" -exec rm -rf {} +' \
      > /usr/local/bin/keep-own-onnxruntime && chmod +x /usr/local/bin/keep-own-onnxruntime

# Each image installs only what its service imports (`npm ci -w`): vega, the load generator's charts,
# cli-progress and the Hugging Face hub client are the CLI image's alone; fastify the gateway's.
# NOTE: --ignore-scripts matches package.json's `allowScripts` policy: onnxruntime-node's install
# script would download CUDA binaries (the CPU ones are bundled) and protobufjs' only prints a notice.
FROM manifests AS deps-gateway
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund -w services/gateway && keep-own-onnxruntime

FROM manifests AS deps-worker
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund -w services/expert-worker && keep-own-onnxruntime

FROM manifests AS deps-cli
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund -w services/cli && keep-own-onnxruntime

FROM manifests AS deps-kv-store
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund -w services/kv-store && keep-own-onnxruntime

# The worker's dependencies plus onnxruntime-node's CUDA 12 execution provider (libonnxruntime_providers_
# cuda.so, _shared.so and _tensorrt.so from the Microsoft.ML.OnnxRuntime.Gpu.Linux NuGet package of
# onnxruntime-node's version), installed by docker/install-cuda-ep.ts rather than onnxruntime-node's
# own script because that one checks nothing: the package's SHA-512 must equal the NuGet registry's
# record of it, and ORT_CUDA_SHA512 (hex) when given. linux/x64 only: no CUDA package for arm64.
FROM deps-worker AS deps-cuda
ARG ORT_CUDA_SHA512=
COPY docker/install-cuda-ep.ts docker/
RUN node docker/install-cuda-ep.ts ${ORT_CUDA_SHA512:+--sha512 "$ORT_CUDA_SHA512"} \
 && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so \
 && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_shared.so \
 && rm -rf docker

# The runtime sources (tests, bench output, models and node_modules are kept out by .dockerignore).
FROM scratch AS sources
COPY package.json /app/
COPY protos /app/protos
COPY packages /app/packages
COPY services /app/services

# ---------------------------------------------------------------------------------------------------
# Each CPU image: Node 24, its own production dependencies, then the sources (a source change rebuilds
# only the last layer), run as a non-root user.
# NOTE: numeric user (the image's `node` user), so Kubernetes' runAsNonRoot can verify it.

# The gateway: HTTP API (8000), dense model part, expert dispatch. Flags after the image name are
# passed to main.ts (`docker run switchyard/gateway --model /models/small --workers ...`).
FROM node-base AS gateway
LABEL org.opencontainers.image.title="switchyard-gateway" \
      org.opencontainers.image.description="Switchyard gateway: OpenAI-compatible HTTP API, the dense model part and expert dispatch"
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps-gateway /app/node_modules ./node_modules
COPY --from=sources /app ./
USER 1000:1000
ENV SWITCHYARD_HOST=0.0.0.0 \
    SWITCHYARD_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.SWITCHYARD_PORT ?? '8000') + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "services/gateway/src/main.ts"]

# The KV page store: KvPageService and grpc.health.v1 on 50070, the KV bulk data plane (page fetches over
# plain TCP) on 50071 (the KvPageService port + 1); pages engines evict, served back to any engine
# (docs/architecture.md §6).
FROM node-base AS kv-store
LABEL org.opencontainers.image.title="switchyard-kv-store" \
      org.opencontainers.image.description="Switchyard KV page store: pages engines evict, served back to any engine"
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps-kv-store /app/node_modules ./node_modules
COPY --from=sources /app ./
USER 1000:1000
ENV SWITCHYARD_HOST=0.0.0.0 \
    SWITCHYARD_KV_STORE_PORT=50070
EXPOSE 50070 50071
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "--input-type=module", "-e", "import { checkHealth } from '@switchyard/rpc'; const status = await checkHealth('127.0.0.1:' + (process.env.SWITCHYARD_KV_STORE_PORT ?? '50070'), '', 3000).catch(() => 'UNREACHABLE'); process.exit(status === 'SERVING' ? 0 : 1);"]
ENTRYPOINT ["node", "services/kv-store/src/main.ts"]

# An expert worker on the CPU: ExpertService and grpc.health.v1 on 50051.
FROM node-base AS worker
LABEL org.opencontainers.image.title="switchyard-worker" \
      org.opencontainers.image.description="Switchyard expert worker (CPU): routed experts over gRPC"
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps-worker /app/node_modules ./node_modules
COPY --from=sources /app ./
USER 1000:1000
ENV SWITCHYARD_WORKER_HOST=0.0.0.0 \
    SWITCHYARD_WORKER_PORT=50051
EXPOSE 50051
HEALTHCHECK --interval=15s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "--input-type=module", "-e", "import { checkHealth } from '@switchyard/rpc'; const status = await checkHealth('127.0.0.1:' + (process.env.SWITCHYARD_WORKER_PORT ?? '50051'), '', 3000).catch(() => 'UNREACHABLE'); process.exit(status === 'SERVING' ? 0 : 1);"]
ENTRYPOINT ["node", "services/expert-worker/src/main.ts"]

# An expert worker on an NVIDIA GPU: the CUDA 12 / cuDNN 9 runtime image with the official Node 24
# binary copied from the node image (the same build as the CPU images; no apt repository to trust,
# and nothing but `node` is needed at run time: npm ran in the deps stage).
FROM ${CUDA_IMAGE} AS worker-cuda
ARG VERSION
ARG REVISION
ARG SOURCE
LABEL org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="${SOURCE}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.vendor="Switchyard" \
      org.opencontainers.image.title="switchyard-worker-cuda" \
      org.opencontainers.image.description="Switchyard expert worker on an NVIDIA GPU (CUDA 12, cuDNN 9)"
COPY --from=node-base /usr/local/bin/node /usr/local/bin/node
RUN groupadd --gid 1000 node \
 && useradd --uid 1000 --gid 1000 --no-create-home --shell /usr/sbin/nologin node
ENV NODE_ENV=production \
    SWITCHYARD_WORKER_HOST=0.0.0.0 \
    SWITCHYARD_WORKER_PORT=50051 \
    SWITCHYARD_EXECUTION_PROVIDER=cuda
WORKDIR /app
COPY --from=deps-cuda /app/node_modules ./node_modules
COPY --from=sources /app ./
USER 1000:1000
EXPOSE 50051
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "--input-type=module", "-e", "import { checkHealth } from '@switchyard/rpc'; const status = await checkHealth('127.0.0.1:' + (process.env.SWITCHYARD_WORKER_PORT ?? '50051'), '', 3000).catch(() => 'UNREACHABLE'); process.exit(status === 'SERVING' ? 0 : 1);"]
ENTRYPOINT ["node", "services/expert-worker/src/main.ts"]

# The `switchyard` command, for the model-init Job and one-off tasks
# (`docker run -v $PWD/models:/models switchyard/cli model init --preset small --seed 7 --out /models/small`).
# The only image with the load generator (`switchyard bench`, `plan`) and its chart libraries. It runs no
# gateway or worker itself (`switchyard up` needs their dependencies: use the repository for that).
FROM node-base AS cli
LABEL org.opencontainers.image.title="switchyard-cli" \
      org.opencontainers.image.description="The switchyard command: model init and import, bench, plan, report"
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps-cli /app/node_modules ./node_modules
COPY --from=sources /app ./
USER 1000:1000
HEALTHCHECK NONE
ENTRYPOINT ["node", "services/cli/src/main.ts"]
CMD ["--help"]
