# Shared by bin/up, bin/test and .ci/run: make sure the machine and .venv have what we need.
# Source it; it defines functions and changes nothing by itself.

# Debian packages the project needs (PostgreSQL 15 with pgTAP, plpgsql_check, pg_prove).
COMPLIANCE_DEB_PACKAGES=(
    postgresql-15
    postgresql-15-pgtap
    postgresql-15-plpgsql-check
    libtap-parser-sourcehandler-pgtap-perl
)

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The python3 to build .venv with (>= 3.11): $PYTHON, else python3.11+, else python3.
pick_python() {
    local candidate
    for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
        [ -n "$candidate" ] || continue
        command -v "$candidate" >/dev/null 2>&1 || continue
        if "$candidate" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else 1)' 2>/dev/null; then
            command -v "$candidate"
            return 0
        fi
    done
    return 1
}

missing_deb_packages() {
    local pkg
    for pkg in "$@"; do
        if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
            printf '%s\n' "$pkg"
        fi
    done
}

# Install the Debian packages that are missing (as root, else with sudo -n, else explain).
ensure_deb_packages() {
    local -a wanted=("${COMPLIANCE_DEB_PACKAGES[@]}")
    command -v dpkg-query >/dev/null 2>&1 || {
        say "not a Debian system: install PostgreSQL 15, pgTAP, plpgsql_check and pg_prove yourself"
        return 0
    }
    local python
    if python=$(pick_python) && ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        wanted+=(python3-venv)
    fi
    local -a missing
    mapfile -t missing < <(missing_deb_packages "${wanted[@]}")
    [ "${#missing[@]}" -eq 0 ] && return 0
    local -a sudo=()
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            die "missing Debian packages: ${missing[*]} — install them as root: apt-get install ${missing[*]}"
        fi
    fi
    say "installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    "${sudo[@]}" apt-get update -qq
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# .venv with the project installed (editable, with the test extra); redone when pyproject changes.
ensure_venv() {
    local root=$1 python stamp wanted
    python=$(pick_python) || die "Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)"
    if [ ! -x "$root/.venv/bin/python" ]; then
        say "creating .venv with $python"
        "$python" -m venv "$root/.venv" || die "could not create .venv (is python3-venv installed?)"
    fi
    stamp="$root/.venv/.compliance-installed"
    wanted=$(sha256sum "$root/pyproject.toml" | cut -d' ' -f1)
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$wanted" ] || [ ! -x "$root/.venv/bin/compliance" ]; then
        say "installing the project into .venv (pip install -e '.[test]')"
        local log="$root/.venv/pip-install.log"
        if ! { "$root/.venv/bin/python" -m pip install -q --upgrade pip \
                && "$root/.venv/bin/python" -m pip install -q -e "$root[test]"; } >"$log" 2>&1; then
            tail -n 30 "$log" >&2
            die "pip install failed (full log: $log)"
        fi
        printf '%s\n' "$wanted" >"$stamp"
    fi
}
