# Shared by bin/demo and bin/test: Debian packages and the virtual environment.

need_system_packages() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "Installing Debian packages: ${missing[*]}"
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo="sudo"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
}

ensure_venv() {
    local extras="$1"
    local python="${PYTHON:-python3.11}"
    command -v "$python" >/dev/null || python=python3
    [ -x .venv/bin/python ] || "$python" -m venv .venv
    # Reinstall only when pyproject.toml or the pinned versions changed since the last install.
    local stamp=".venv/.installed${extras}"
    if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ] || [ constraints.txt -nt "$stamp" ]; then
        .venv/bin/pip install -q --upgrade pip
        .venv/bin/pip install -q -c constraints.txt -e ".${extras}"
        touch "$stamp"
    fi
}
