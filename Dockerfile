# A minimal image: the static stump binary, CA certificates for HTTPS to S3 and CDN
# APIs, and nothing else (no shell, no package manager). Build the binary first:
#
#   ./scripts/container            # builds dist/container/stump and the image (podman, buildah or docker)
#
# Credentials come from the environment (AWS_*, FASTLY_API_TOKEN, ...) or a mounted
# AWS profile; the workspace is mounted at /work:
#
#   podman run --rm -v "$PWD:/work" -e AWS_REGION stump publish --all
FROM scratch
COPY dist/container/ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
COPY dist/container/stump /usr/local/bin/stump
USER 65532:65532
WORKDIR /work
ENTRYPOINT ["/usr/local/bin/stump"]
CMD ["--help"]
