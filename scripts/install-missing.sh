# Sourced by the ensure-packages scripts: `install_missing WHAT PACKAGE...` installs the listed
# Debian packages (none: nothing to do); without root it prints the command and fails.
install_missing() {
    local what=$1; shift
    [ $# -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "$what missing ($*); install them as root:" >&2
        echo "  apt-get install -y --no-install-recommends $*" >&2
        return 1
    fi
    echo "installing $*" >&2
    apt-get update >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" >&2
}
