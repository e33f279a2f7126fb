#!/usr/bin/env bash
# Debian packages the test suite talks to: dcmtk (storescu, echoscu, dcmdump), Orthanc with its
# DICOMweb plugin (a real PACS), socat and iproute2 (Orthanc on a private loopback), and
# Chromium for the browser tests (driven by Playwright; its own browser download cannot run).
# Installs what is missing when run as root; otherwise says what to install.
set -euo pipefail
declare -A probe=(
  [dcmtk]=/usr/bin/storescu
  [orthanc]=/usr/sbin/Orthanc
  [orthanc-dicomweb]=/usr/share/orthanc/plugins/libOrthancDicomWeb.so
  [socat]=/usr/bin/socat
  [iproute2]=/usr/sbin/ip
  [chromium]=/usr/bin/chromium
)
missing=()
for package in "${!probe[@]}"; do
  [ -e "${probe[$package]}" ] || missing+=("$package")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
  echo "Missing Debian packages: ${missing[*]} (sudo apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "Installing Debian packages: ${missing[*]}"
apt-get update -qq
# policy-rc.d keeps the orthanc package from starting a system-wide server on all interfaces.
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  trap 'rm -f /usr/sbin/policy-rc.d' EXIT
fi
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
