# Shared by bin/up, bin/test and .ci/run: make sure the machine and .venv have what we need.
# Source it; it defines functions and changes nothing by itself.

# Debian packages the project needs: PostgreSQL (15 where the distribution has it: Debian 12;
# else its default major, 16+) and, for the tests, pgTAP, plpgsql_check, pg_prove and
# libfaketime (`bin/test --at`) and poppler-utils (pdftoppm, pdftotext: the PDFs are rendered and
# looked at, tests/web/pdf_check.py).
# `ensure_deb_packages run` installs only what running the system needs (bin/up).
compliance_deb_packages() {
    local purpose=${1:-test} major
    major=$(pg_major)
    printf '%s\n' "postgresql-$major"
    [ "$purpose" = run ] && return 0
    printf '%s\n' "postgresql-$major-pgtap" "postgresql-$major-plpgsql-check" \
        libtap-parser-sourcehandler-pgtap-perl faketime poppler-utils
}

# The PostgreSQL major version to use: $PG_MAJOR; else 15 if installed; else the newest server
# installed; else 15 if apt offers it; else the major of the distribution's `postgresql`.
pg_major() {
    if [ -n "${PG_MAJOR:-}" ]; then printf '%s\n' "$PG_MAJOR"; return 0; fi
    if [ -x /usr/lib/postgresql/15/bin/initdb ]; then echo 15; return 0; fi
    local installed
    installed=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null \
        | awk -F/ '{print $5}' | sort -n | tail -n 1)
    if [ -n "$installed" ]; then printf '%s\n' "$installed"; return 0; fi
    if apt_candidate postgresql-15; then echo 15; return 0; fi
    local dep
    dep=$(apt-cache depends postgresql 2>/dev/null | sed -n 's/.*Depends: postgresql-\([0-9][0-9]*\)$/\1/p' | head -n 1)
    printf '%s\n' "${dep:-15}"
}

apt_candidate() {
    command -v apt-cache >/dev/null 2>&1 || return 1
    local candidate
    candidate=$(apt-cache policy "$1" 2>/dev/null | sed -n 's/^ *Candidate: //p')
    [ -n "$candidate" ] && [ "$candidate" != "(none)" ]
}

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
# $1: "test" (default: server, pgTAP, plpgsql_check, pg_prove) or "run" (the server only).
ensure_deb_packages() {
    local purpose=${1:-test}
    command -v dpkg-query >/dev/null 2>&1 || {
        say "not a Debian system: install PostgreSQL 15.9+ (and for tests pgTAP, plpgsql_check, pg_prove) yourself"
        return 0
    }
    local -a wanted missing sudo=()
    mapfile -t wanted < <(compliance_deb_packages "$purpose")
    local python
    if python=$(pick_python) && ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        wanted+=(python3-venv)
    fi
    mapfile -t missing < <(missing_deb_packages "${wanted[@]}")
    [ "${#missing[@]}" -eq 0 ] && return 0
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
            sudo=(sudo -n)
        else
            die "missing Debian packages: ${missing[*]} — install them as root: apt-get install ${missing[*]}"
        fi
    fi
    export DEBIAN_FRONTEND=noninteractive
    say "apt-get update"
    "${sudo[@]}" apt-get update -qq
    # With fresh package lists the PostgreSQL major may change (a machine without 15).
    mapfile -t wanted < <(compliance_deb_packages "$purpose")
    if python=$(pick_python) && ! "$python" -c 'import venv, ensurepip' >/dev/null 2>&1; then
        wanted+=(python3-venv)
    fi
    mapfile -t missing < <(missing_deb_packages "${wanted[@]}")
    [ "${#missing[@]}" -eq 0 ] && return 0
    say "installing ${missing[*]}"
    "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# .venv holding exactly requirements.lock (every dependency, test tools and the build backend
# included, each pinned with its hashes), then the project itself, editable, without
# dependencies. Made anew when the lock or pyproject.toml changes, so nothing stale stays.
ensure_venv() {
    local root=$1 python stamp wanted
    python=$(pick_python) || die "Python 3.11 or newer is needed (set PYTHON=/path/to/python3.11)"
    stamp="$root/.venv/.compliance-installed"
    wanted=$(cat "$root/requirements.lock" "$root/pyproject.toml" | sha256sum | cut -d' ' -f1)
    if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ] && [ -x "$root/.venv/bin/compliance" ]; then
        return 0
    fi
    if [ -e "$root/.venv" ]; then
        say "requirements.lock or pyproject.toml changed: making .venv anew"
        rm -rf "$root/.venv"
    fi
    say "creating .venv with $python"
    "$python" -m venv "$root/.venv" || die "could not create .venv (is python3-venv installed?)"
    say "installing requirements.lock, then the project (pip install --no-deps -e .)"
    local log="$root/.venv/pip-install.log"
    if ! { "$root/.venv/bin/python" -m pip install -q --require-hashes --no-deps \
                -r "$root/requirements.lock" \
            && "$root/.venv/bin/python" -m pip install -q --no-deps --no-build-isolation \
                -e "$root"; } >"$log" 2>&1; then
        tail -n 30 "$log" >&2
        die "pip install failed (full log: $log)"
    fi
    printf '%s\n' "$wanted" >"$stamp"
}

# The environment that runs a command at another wall-clock time: `export_fake_clock '<when>'`
# (anything `date -d` reads; without a zone it is UTC, e.g. '2026-03-08 06:30:00' or
# 'TZ="America/Detroit" 2026-03-07 23:30'). libfaketime shifts the wall clock of every process
# started under it (PostgreSQL included) by the same offset from the real one, so the clock keeps
# running and all processes agree on the time. The monotonic clock stays real, so timeouts and
# waits behave; tests/clock/sitecustomize.py gives Python a time.sleep that works so. The
# machine's and the server's zone become Pacific/Kiritimati (UTC+14), far from any
# organisation's, so a date taken from the machine instead of the organisation shows up.
export_fake_clock() {
    local root=$1 when=$2 target lib
    target=$(TZ=UTC date -d "$when" +%s) || die "--at: cannot read the time '$when'"
    lib=$(find /usr/lib /usr/lib64 -path '*/faketime/libfaketimeMT.so.1' 2>/dev/null | head -n 1)
    [ -n "$lib" ] || die "--at needs libfaketime (apt-get install faketime)"
    export FAKETIME="$(printf '%+d' $((target - $(date +%s))))"
    export FAKETIME_DONT_FAKE_MONOTONIC=1
    export LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}"
    export PYTHONPATH="$root/tests/clock${PYTHONPATH:+:$PYTHONPATH}"
    export TZ=Pacific/Kiritimati
    export COMPLIANCE_TEST_SERVER_TIMEZONE=Pacific/Kiritimati
    export COMPLIANCE_TEST_AT="$(TZ=UTC date -d "@$target" '+%Y-%m-%d %H:%M:%S UTC')"
    say "clock moved to $COMPLIANCE_TEST_AT (FAKETIME=$FAKETIME s), machine and server zone $TZ"
}
