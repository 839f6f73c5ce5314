#!/usr/bin/env bash
# Installs the Debian 12 packages edgefleet needs. Idempotent: installs only what is missing.
# Works as root or through sudo. Set EDGEFLEET_SKIP_APT=1 to skip (e.g. in a prepared image).
set -euo pipefail

PACKAGES=(
  # toolchain
  g++ cmake make pkg-config ccache
  # tensors, TorchScript, training (the system BLAS must be OpenBLAS, not the reference one)
  libtorch-dev libopenblas0-pthread
  # the ONNX protobuf schema port writes variants in (what phones and Raspberry Pis run)
  libonnx-dev
  # imaging and the second inference engine
  libopencv-dev libturbojpeg0-dev libpng-dev libwebp-dev libheif-dev libraw-dev libtiff-dev libexif-dev libjpeg-dev libvips-dev libmagick++-6.q16-dev zlib1g-dev
  # real raw developers the virtual camera's ISP stages run (camera:dcraw|darktable|rawtherapee)
  dcraw darktable rawtherapee
  # storage, serving, config, CLI, logging
  libssl-dev libsqlite3-dev libcpp-httplib-dev libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc libsimdjson-dev nlohmann-json3-dev libcli11-dev libspdlog-dev libtbb-dev
  # data
  dataset-fashion-mnist
  # plots in reports (SVG)
  gnuplot-nox
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev
  # the HTML report test renders the page in a real browser
  chromium
  # the demo reads the server's metrics; the serving benchmark's load generator; the metrics
  # lint (promtool) and the slow-client attack of the hostile-client tests and benchmarks
  curl wrk jq prometheus slowhttptest
  # gRPC against HTTP with one load generator (h2load)
  nghttp2-client
  # the deployment manifests test parses YAML; the gRPC test's independent client
  python3-yaml python3-grpcio python3-grpc-tools
  # the replicas benchmark's load balancer
  haproxy
  # comparison baselines in bench/ only (never used by the product)
  python3 python3-torch python3-opencv python3-pil
)

if [[ "${EDGEFLEET_SKIP_APT:-0}" == "1" ]]; then exit 0; fi

missing=()
for p in "${PACKAGES[@]}"; do
  status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
  [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
if [[ ${#missing[@]} -eq 0 ]]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: not root and no sudo; install: ${missing[*]}" >&2; exit 1; }
  SUDO="sudo"
fi
echo "install-deps: installing ${#missing[@]} packages: ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "install-deps: done"
