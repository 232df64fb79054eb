# Release build of the chat service, in two stages: build with the Rust toolchain, run on a slim
# Debian. With the default DATABASE_URL the SQLite file lives in /data (a volume); the cluster in
# docker-compose.yml sets a postgres:// DATABASE_URL and REDIS_URL instead.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src src
COPY migrations migrations
COPY openapi openapi
COPY web web
RUN cargo build --release --locked --bin chat

FROM debian:bookworm-slim
# The system's roots verify PostgreSQL and Redis servers over TLS.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /data chat && mkdir -p /data && chown chat /data
COPY --from=build /src/target/release/chat /usr/local/bin/chat
USER chat
WORKDIR /data
ENV CHAT_ADDR=0.0.0.0:8080 \
    DATABASE_URL=sqlite:///data/chat.db
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/usr/local/bin/chat"]
