# oauthtest in a container: every mode, `serve` by default, listening on 0.0.0.0:8080.
#
#   docker build -t oauthtest .
#   docker run --rm -p 127.0.0.1:8080:8080 oauthtest                      # serve (the default)
#   docker run --rm oauthtest --mode mock-all                             # any other mode
#   docker run --rm -p 127.0.0.1:8080:8080 oauthtest --mode serve --host 0.0.0.0 --port 8080 --scenario rotation
#
# The build needs no network beyond the image and package registries (crates.io): rust:alpine
# compiles a static musl binary (scenarios built in; rustls with bundled roots, so no CA files),
# copied into busybox, whose wget the HEALTHCHECK uses. The admin API (/__admin/) answers anyone
# who reaches the port: publish it on 127.0.0.1, or on a network only your tests share.
# See docs/container.md (Testcontainers recipes, and how the image's binary is tested).

ARG RUST_VERSION=1.95

FROM rust:${RUST_VERSION}-alpine AS build
# A C compiler and musl's headers for SQLite's and ring's C code.
RUN apk add --no-cache gcc musl-dev
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    CARGO_PROFILE_RELEASE_STRIP=symbols cargo build --release --locked --bin oauthtest \
    && cp target/release/oauthtest /oauthtest

FROM busybox:1.37-musl
COPY --from=build /oauthtest /usr/local/bin/oauthtest
# Nobody, in a writable directory: a mode's default SQLite store (./oauthtest.db) lands in /tmp.
USER 65534:65534
WORKDIR /tmp
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s --retries=3 \
    CMD wget -q -O /dev/null --header 'Content-Type: application/json' http://127.0.0.1:8080/__admin || exit 1
ENTRYPOINT ["oauthtest"]
CMD ["--mode", "serve", "--host", "0.0.0.0", "--port", "8080"]
