#!/usr/bin/env bash
# Installs the real mail servers the email tests run against, when missing (Debian):
# dovecot-imapd (IMAP) and python3-aiosmtpd (an SMTP server that stores what it receives),
# plus openssl for their TLS certificates. Needs root to install; does nothing when present.
set -euo pipefail
missing=()
[ -x /usr/sbin/dovecot ] || missing+=(dovecot-imapd)
/usr/bin/python3 -c 'import aiosmtpd' >/dev/null 2>&1 || missing+=(python3-aiosmtpd)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# shellcheck source=scripts/install-missing.sh
. "$(dirname "$0")/../install-missing.sh"
install_missing "mail servers" "${missing[@]}"
