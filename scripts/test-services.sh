#!/usr/bin/env bash
# Install and start what the test suite needs beyond Python packages.
# Nothing is needed yet; later issues add PostgreSQL and Chromium here.
set -euo pipefail
exit 0
