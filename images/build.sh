#!/usr/bin/env bash
# Build assay's runtime images (`make image`): the classifier server's lean image and the
# pipeline image (components, KubeRay, bias scorer), from images/Dockerfile.
#
# BASE picks the Python base image (the Dockerfile's PYTHON_IMAGE build argument):
#   auto (default)  the public python:3.11 slim image when it is present or can be pulled, else the
#                   offline Debian base from images/build-base.sh (built when missing)
#   public | local  one of those two, no fallback
#   any other value an image reference, used as given
# ENGINE: podman (default when present) or docker. IMAGE / CLASSIFIER_IMAGE: the tags (default:
# tagged with pyproject.toml's version, the tag assay.config.PIPELINE_IMAGE and the manifests use).
# BUILD_FLAGS: more flags for both builds, e.g. BUILD_FLAGS=--no-cache (a cold build of assay's
# layers; the base image is kept).
set -euo pipefail
cd "$(dirname "$0")/.."

engine="${ENGINE:-$(command -v podman >/dev/null 2>&1 && echo podman || echo docker)}"
public_base="${PUBLIC_BASE:-docker.io/library/python:3.11.14-slim-bookworm}"
local_base="${LOCAL_BASE:-localhost/assay-python:3.11-bookworm}"
version="$(sed -n 's/^version = "\(.*\)"$/\1/p' pyproject.toml | head -n 1)"
if [ -z "$version" ]; then
  echo "no version = \"...\" line in pyproject.toml" >&2
  exit 1
fi
image="${IMAGE:-ghcr.io/assay-ml/assay:$version}"
classifier_image="${CLASSIFIER_IMAGE:-ghcr.io/assay-ml/assay-classifier:$version}"
base="${BASE:-auto}"

have_image() { "$engine" image inspect "$1" >/dev/null 2>&1; }

case "$base" in
  public) python_image="$public_base" ;;
  local) python_image="$local_base" ;;
  auto)
    if have_image "$public_base" || "$engine" pull -q "$public_base" >/dev/null 2>&1; then
      python_image="$public_base"
    else
      echo "cannot pull $public_base: building on the offline base $local_base" >&2
      python_image="$local_base"
    fi
    ;;
  *) python_image="$base" ;;
esac
if [ "$python_image" = "$local_base" ] && ! have_image "$local_base"; then
  ENGINE="$engine" images/build-base.sh "$local_base"
fi

build_args=(--build-arg "PYTHON_IMAGE=$python_image" -f images/Dockerfile)
# shellcheck disable=SC2206  # BUILD_FLAGS is a list of flags, split on spaces
build_args+=(${BUILD_FLAGS:-})
# pip and uv verify TLS against the system bundle; behind an intercepting proxy only the host's
# bundle knows its CA. podman mounts it for the RUN steps only: it is never part of a layer.
host_ca=/etc/ssl/certs/ca-certificates.crt
if [ "$engine" = podman ] && [ -f "$host_ca" ]; then
  build_args+=(-v "$host_ca:$host_ca:ro")
fi

"$engine" build "${build_args[@]}" --target classifier -t "$classifier_image" .
"$engine" build "${build_args[@]}" --target pipeline -t "$image" .
"$engine" image ls --filter "reference=$image" --filter "reference=$classifier_image"
