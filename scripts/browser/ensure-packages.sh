#!/usr/bin/env bash
# Installs what the browser tests drive, when missing (Debian): chromium and chromium-driver
# (chromedriver of the same version), and firefox-esr (driven over WebDriver BiDi, which it
# speaks itself: no geckodriver). Needs root to install; does nothing when present.
set -euo pipefail
missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
[ -x /usr/bin/chromedriver ] || missing+=(chromium-driver)
[ -x /usr/bin/firefox-esr ] || missing+=(firefox-esr)
# shellcheck source=scripts/install-missing.sh
. "$(dirname "$0")/../install-missing.sh"
install_missing "browser test packages" "${missing[@]}"
