#!/bin/sh
# Generate configure and Makefile.in from a git checkout.
set -e
cd "$(dirname "$0")"
mkdir -p m4 build-aux
cp "$(automake --print-libdir)/tap-driver.sh" build-aux/
autoreconf -fi
