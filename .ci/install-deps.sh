#!/usr/bin/env bash
# Installs the Debian packages dpl needs to build, test and benchmark (run as root, or through sudo); clang, its
# sanitizer/libFuzzer runtimes and its OpenMP runtime build the fuzzers (docs/robustness.md); munge, slurmctld, slurmd
# and slurm-client are the single-node SLURM cluster tests/slurm/start.sh starts for the sweep's test (docs/sweep.md).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends \
  build-essential cmake pkg-config git \
  libvulkan-dev libvulkan-volk-dev glslang-tools mesa-vulkan-drivers vulkan-validationlayers vulkan-tools \
  luajit libluajit-5.1-dev lua-argparse \
  libopenblas-dev libdnnl-dev libpng-dev libstb-dev libtiff-dev libjpeg-dev zlib1g-dev libsqlite3-dev libcurl4 libssl3 \
  python3 python3-numpy python3-torch python3-torchvision python3-pil python3-skimage python3-scipy \
  gnuplot-nox clang libclang-rt-14-dev libomp-dev \
  munge slurmctld slurmd slurm-client
