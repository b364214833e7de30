# syntax=docker/dockerfile:1
#
# Rosetta container image.
#
#   docker build -t rosetta .
#   docker run --rm -p 8080:8080 -e ANTHROPIC_API_KEY=... rosetta
#
# The shipped mappings are baked in at /app/mappings. To use your own, mount a directory over it
# (read-only is enough): `-v "$PWD/my-mappings:/app/mappings:ro"`, or point ROSETTA_MAPPINGS
# elsewhere. Other subcommands run the same way: `docker run --rm rosetta check`.
#
# Needs BuildKit (the default builder of current Docker and of `docker compose build`) for the
# cache mounts below.

# The toolchain CI tests with; the code needs 1.88 or newer (edition 2024).
# Override with `--build-arg RUST_VERSION=1.xx`.
ARG RUST_VERSION=1.95

############################################################################################
# Build stage: compile only the `rosetta` binary.
FROM rust:${RUST_VERSION}-slim-bookworm AS build
WORKDIR /src

# Every input of the build, and nothing else (CI builds from exactly these lines:
# scripts/ci-dockerfile-build):
# - the workspace: both members' manifests and sources must be present for Cargo to load it,
#   though only `rosetta` is built (testkit is a dev-dependency);
# - benches/: Cargo.toml declares its [[bench]] targets, and Cargo refuses a manifest whose
#   targets are missing;
# - migrations/: the ledger's SQL, compiled into the binary (include_str! in src/ledger/store.rs);
# - .cargo/config.toml: its CFLAGS make mimalloc commit memory lazily (half the idle memory).
COPY Cargo.toml Cargo.lock ./
COPY .cargo ./.cargo
COPY src ./src
COPY dialects ./dialects
COPY benches ./benches
COPY migrations ./migrations
COPY testkit ./testkit

# Downloaded crates and compiled dependencies live in cache mounts, so a source change
# recompiles only Rosetta itself. The cache is not part of the image: copy the binary out.
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/usr/local/cargo/git,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked -p rosetta --bin rosetta \
 && install -D -m 0755 target/release/rosetta /out/rosetta

############################################################################################
# Runtime stage: glibc (same Debian release as the build stage) and the binary, nothing else.
# No ca-certificates: TLS is rustls with the webpki-roots bundle compiled into the binary.
# No curl or wget: the health check is `rosetta health`.
FROM debian:bookworm-slim AS runtime

RUN groupadd --system --gid 10001 rosetta \
 && useradd --system --uid 10001 --gid rosetta --no-create-home --home-dir /app \
        --shell /usr/sbin/nologin rosetta

WORKDIR /app
COPY --from=build /out/rosetta /usr/local/bin/rosetta
# Owned by root and read-only for the service user: Rosetta only reads its mappings.
COPY mappings/ /app/mappings/
# The ledger (docs/usage-and-budgets.md): a SQLite file the service user owns; mount a volume
# here to keep it, or set ROSETTA_LEDGER=postgres://... to share one between replicas.
RUN mkdir -p /data && chown 10001:10001 /data
VOLUME ["/data"]

ENV ROSETTA_MAPPINGS=/app/mappings \
    ROSETTA_LISTEN=0.0.0.0:8080 \
    ROSETTA_LOG_FORMAT=text \
    ROSETTA_LEDGER=sqlite:///data/ledger.db \
    RUST_LOG=info

USER 10001:10001
EXPOSE 8080

# `rosetta health` asks http://127.0.0.1:8080/health and exits 0 only on a 200.
HEALTHCHECK --interval=15s --timeout=10s --start-period=5s --retries=3 \
    CMD ["rosetta", "health"]

# Exec form: Rosetta is PID 1 and gets SIGTERM, on which it drains in-flight requests
# (up to 30 s; give `docker stop` a longer --time if streams run long).
ENTRYPOINT ["rosetta"]
CMD ["serve"]
