# healthweb in a container: the server, the status page, and a HEALTHCHECK that
# probes it with its own `healthweb check` (grpc-health-probe's flags and exit codes).
#
#   docker build -t healthweb .
#   docker run -p 8080:8080 healthweb --service payments=SERVING

FROM rust:1-bookworm AS build
WORKDIR /src
RUN rustup target add wasm32-unknown-unknown \
    && cargo install wasm-pack --locked
COPY . .
RUN version=$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/version = |"/, ""); print; exit }' Cargo.lock) \
    && cargo install wasm-bindgen-cli --version "$version" \
    && cargo build --release --bin healthweb \
    && wasm-pack build web-client --target web --out-dir ../www/pkg --profile wasm-release

FROM debian:bookworm-slim
# tzdata: maintenance windows in a time zone (`time_zone = "Europe/Paris"`) read /usr/share/zoneinfo.
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates tzdata \
    && rm -rf /var/lib/apt/lists/* \
    && mkdir -p /var/lib/healthweb && chown nobody /var/lib/healthweb
COPY --from=build /src/target/release/healthweb /usr/local/bin/healthweb
# healthweb is also grpc-health-probe, at the path its README installs it
# (/bin/grpc_health_probe; /bin is /usr/bin here): exec probes written for it run as they are.
RUN ln -s /usr/local/bin/healthweb /usr/bin/grpc_health_probe
COPY --from=build /src/www /srv/www
# History (every status change) lives in the volume, so it survives new containers:
# the default history file is in $STATE_DIRECTORY. Without a writable volume (a
# read-only root filesystem) history is kept in memory, and healthweb says so.
# Replicas set HEALTHWEB_HISTORY=postgres://... instead (deploy/).
ENV HEALTHWEB_LISTEN=0.0.0.0:8080 \
    HEALTHWEB_WWW=/srv/www \
    STATE_DIRECTORY=/var/lib/healthweb
VOLUME /var/lib/healthweb
EXPOSE 8080
USER nobody
HEALTHCHECK --interval=10s --timeout=3s --start-period=2s --retries=3 \
    CMD ["healthweb", "check", "--addr", "http://127.0.0.1:8080", "--timeout", "2s"]
ENTRYPOINT ["healthweb", "serve"]
