#!/usr/bin/env bash
# An offline base image for images/Dockerfile, for machines that cannot pull python:3.11 from a
# registry: Debian bookworm's own python3.11 (minbase + venv + CA certificates), made with
# mmdebstrap from Debian packages and imported into the container engine.
#
#   images/build-base.sh [TAG]          (default TAG: localhost/assay-python:3.11-bookworm)
#   ENGINE=docker images/build-base.sh  (default: podman when present, else docker)
#
# Idempotent: does nothing when TAG already exists. Needs mmdebstrap (Debian package) and root or
# a user namespace. This base has `python3` and no `python`; the Dockerfile links it.
set -euo pipefail

tag="${1:-localhost/assay-python:3.11-bookworm}"
engine="${ENGINE:-$(command -v podman >/dev/null 2>&1 && echo podman || echo docker)}"
suite="${SUITE:-bookworm}"
mirror="${DEBIAN_MIRROR:-}"

if "$engine" image inspect "$tag" >/dev/null 2>&1; then
  echo "base image $tag exists ($engine): nothing to do"
  exit 0
fi
command -v mmdebstrap >/dev/null 2>&1 || {
  echo "mmdebstrap is missing: apt-get install mmdebstrap (or pull a python:3.11 image)" >&2
  exit 1
}

workdir="$(mktemp -d)"
trap 'rm -rf "$workdir"' EXIT
# shellcheck disable=SC2086  # the mirror is optional: an empty value adds no argument
# No manual pages, translations or documentation (copyright files stay): about 50 MB less.
mmdebstrap --quiet --variant=minbase \
  --dpkgopt='path-exclude=/usr/share/man/*' \
  --dpkgopt='path-exclude=/usr/share/locale/*' \
  --dpkgopt='path-include=/usr/share/locale/locale.alias' \
  --dpkgopt='path-exclude=/usr/share/doc/*' \
  --dpkgopt='path-include=/usr/share/doc/*/copyright' \
  --include=python3.11,python3.11-venv,ca-certificates \
  "$suite" "$workdir/rootfs.tar" $mirror
"$engine" import "$workdir/rootfs.tar" "$tag" >/dev/null
echo "base image $tag imported ($engine)"
