# syntax=docker/dockerfile:1
# Build: docker build -t edge .
# Run:   docker run --rm -p 8080:8080 -v $PWD/edge.yaml:/etc/edge/edge.yaml:ro edge
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o /out/edge ./cmd/edge

# distroless/static has CA certificates and tzdata, no shell, and runs as
# nonroot (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/edge /usr/local/bin/edge
USER nonroot:nonroot
EXPOSE 8080
ENV EDGE_CONFIG=/etc/edge/edge.yaml
ENTRYPOINT ["/usr/local/bin/edge"]
CMD ["serve"]
