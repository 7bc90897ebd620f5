# Build: everything (SQLite, libpq, OpenSSL, Swagger UI) is bundled, so the runtime image
# needs no system libraries beyond libc.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked

FROM debian:bookworm-slim
RUN useradd --system --home /var/lib/stockroom --create-home stockroom
COPY --from=build /src/target/release/stockroom /usr/local/bin/stockroom
USER stockroom
WORKDIR /var/lib/stockroom
ENV STOCKROOM_BIND=0.0.0.0:8080 DATABASE_URL=sqlite:///var/lib/stockroom/stockroom.db
EXPOSE 8080
HEALTHCHECK CMD ["/bin/sh", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080"]
ENTRYPOINT ["stockroom"]
CMD ["serve"]
