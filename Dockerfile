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
# the repository's runtime sources plus `npm ci --omit=dev`; there is no build step. package.json's
# devDependency `node` (Node 24 for npm scripts on older systems) is left out with the other
# devDependencies: the base image is Node 24 already.
#
# NOTE: NODE_VERSION pins the same Node as package.json's `node` devDependency (a test checks it), so
# the images run what the tests ran.
ARG NODE_VERSION=24.21.0
# CUDA 12 + cuDNN 9 runtime: what onnxruntime-node's CUDA 12 execution provider links against.
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu22.04

FROM node:${NODE_VERSION}-bookworm-slim AS node-base

# ---------------------------------------------------------------------------------------------------
# Production dependencies. Only the manifests are copied first, so a source change reuses this layer.
# Every workspace's package.json must be listed (a test checks it): `npm ci` refuses a lockfile whose
# workspaces are missing.
FROM node-base AS deps
WORKDIR /app
COPY package.json package-lock.json ./
COPY packages/cluster/package.json packages/cluster/
COPY packages/dispatch/package.json packages/dispatch/
COPY packages/engine/package.json packages/engine/
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
# NOTE: --ignore-scripts matches package.json's `allowScripts` policy: onnxruntime-node's install
# script would download CUDA binaries (the CPU ones are bundled) and protobufjs' only prints a notice.
RUN --mount=type=cache,target=/root/.npm \
    npm ci --omit=dev --ignore-scripts --no-audit --no-fund

# The same dependencies plus onnxruntime-node's CUDA 12 execution provider (libonnxruntime_providers_
# cuda.so, _shared.so and _tensorrt.so from the Microsoft.ML.OnnxRuntime.Gpu.Linux NuGet package).
# The install script is run directly, with its documented flag, because the project's allowScripts
# policy denies it during `npm ci` (equivalently: npm_config_onnxruntime_node_install=cuda12 or
# ONNXRUNTIME_NODE_INSTALL=cuda12). linux/x64 only: the script has no CUDA manifest for arm64.
FROM deps AS deps-cuda
RUN node node_modules/onnxruntime-node/script/install.js --onnxruntime-node-install=cuda12 \
 && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_cuda.so \
 && test -f node_modules/onnxruntime-node/bin/napi-v6/linux/x64/libonnxruntime_providers_shared.so

# The runtime sources (tests, bench output, models and node_modules are kept out by .dockerignore).
FROM scratch AS sources
COPY package.json /app/
COPY protos /app/protos
COPY packages /app/packages
COPY services /app/services

# ---------------------------------------------------------------------------------------------------
# Common runtime for the CPU images: Node 24, production dependencies, sources, a non-root user.
FROM node-base AS app
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps /app ./
COPY --from=sources /app ./
# NOTE: numeric user (the image's `node` user), so Kubernetes' runAsNonRoot can verify it.
USER 1000:1000

# The gateway: HTTP API (8000), dense model part, expert dispatch. Flags after the image name are
# passed to main.ts (`docker run switchyard/gateway --model /models/small --workers ...`).
FROM app AS gateway
ENV SWITCHYARD_HOST=0.0.0.0 \
    SWITCHYARD_PORT=8000
EXPOSE 8000
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.SWITCHYARD_PORT ?? '8000') + '/health').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "services/gateway/src/main.ts"]

# The KV page store: KvPageService and grpc.health.v1 on 50070; pages engines evict, served back to any
# engine (docs/architecture.md §6).
FROM app AS kv-store
ENV SWITCHYARD_HOST=0.0.0.0 \
    SWITCHYARD_KV_STORE_PORT=50070
EXPOSE 50070
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
  CMD ["node", "--input-type=module", "-e", "import { checkHealth } from '@switchyard/rpc'; const status = await checkHealth('127.0.0.1:' + (process.env.SWITCHYARD_KV_STORE_PORT ?? '50070'), '', 3000).catch(() => 'UNREACHABLE'); process.exit(status === 'SERVING' ? 0 : 1);"]
ENTRYPOINT ["node", "services/kv-store/src/main.ts"]

# An expert worker on the CPU: ExpertService and grpc.health.v1 on 50051.
FROM app AS worker
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
COPY --from=node-base /usr/local/bin/node /usr/local/bin/node
RUN groupadd --gid 1000 node \
 && useradd --uid 1000 --gid 1000 --no-create-home --shell /usr/sbin/nologin node
ENV NODE_ENV=production \
    SWITCHYARD_WORKER_HOST=0.0.0.0 \
    SWITCHYARD_WORKER_PORT=50051 \
    SWITCHYARD_EXECUTION_PROVIDER=cuda
WORKDIR /app
COPY --from=deps-cuda /app ./
COPY --from=sources /app ./
USER 1000:1000
EXPOSE 50051
HEALTHCHECK --interval=15s --timeout=5s --start-period=120s --retries=3 \
  CMD ["node", "--input-type=module", "-e", "import { checkHealth } from '@switchyard/rpc'; const status = await checkHealth('127.0.0.1:' + (process.env.SWITCHYARD_WORKER_PORT ?? '50051'), '', 3000).catch(() => 'UNREACHABLE'); process.exit(status === 'SERVING' ? 0 : 1);"]
ENTRYPOINT ["node", "services/expert-worker/src/main.ts"]

# The `switchyard` command, for the model-init Job and one-off tasks
# (`docker run -v $PWD/models:/models switchyard/cli model init --preset small --seed 7 --out /models/small`).
# `switchyard bench` and `plan` use the load generator, packages/loadgen, which every image carries.
FROM app AS cli
HEALTHCHECK NONE
ENTRYPOINT ["node", "services/cli/src/main.ts"]
CMD ["--help"]
