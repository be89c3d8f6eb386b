#!/usr/bin/env bash
# Build the one-folder bundle dist/canvas-app/ with PyInstaller (Linux; see packaging/README.md for
# Windows and macOS). Run from anywhere; the environment must have the app's dependencies and
# pyinstaller installed (pip install pyinstaller), and resources/models/builtin must exist.
#
#   packaging/build.sh [--dist DIR] [--work DIR] [--incremental]
#
# --incremental keeps PyInstaller's analysis cache: when only resources/ changed (a new model), the
# rebuild takes seconds instead of the full analysis.
#
# Environment: PYTHON (default python3), CANVAS_APP_BUNDLE_ALLOW_CUDA=1 to bundle a CUDA build of
# torch (several GB; the default refuses, because the CPU build is what the bundle is meant for),
# CANVAS_APP_BUNDLE_RESOURCES=DIR to bundle another resources folder than the checkout's.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
python="${PYTHON:-python3}"
dist="$root/dist"
work="$root/build/pyinstaller"
clean=--clean
while [[ $# -gt 0 ]]; do
    case "$1" in
        --dist) dist="$2"; shift ;;
        --work) work="$2"; shift ;;
        --incremental) clean="" ;;
        -h|--help) sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) echo "error: unknown argument: $1" >&2; exit 2 ;;
    esac
    shift
done

# 1. Check the environment before spending minutes on analysis.
if ! "$python" -m PyInstaller --version >/dev/null 2>&1; then
    echo "error: PyInstaller is not installed for $python (pip install pyinstaller)" >&2
    exit 1
fi
resources="${CANVAS_APP_BUNDLE_RESOURCES:-$root/resources}"
if [[ ! -f "$resources/models/builtin/model_index.json" ]]; then
    echo "error: the built-in model is missing ($resources/models/builtin); the bundle ships it" >&2
    exit 1
fi
torch_version="$("$python" -c 'import importlib.metadata as m; print(m.version("torch"))')"
if [[ "$torch_version" == *+cu* || "$torch_version" == *+rocm* ]] && [[ "${CANVAS_APP_BUNDLE_ALLOW_CUDA:-}" != 1 ]]; then
    echo "error: torch $torch_version is a GPU build; install the CPU build for the bundle" >&2
    echo "       (pip install torch --index-url https://download.pytorch.org/whl/cpu)" >&2
    echo "       or set CANVAS_APP_BUNDLE_ALLOW_CUDA=1 to bundle it anyway" >&2
    exit 1
fi
echo "building with $("$python" --version), torch $torch_version, PyInstaller $("$python" -m PyInstaller --version)"

# 2. Build. --clean by default, so that a stale analysis cache never hides a changed dependency.
start=$(date +%s)
cd "$root"
"$python" -m PyInstaller --noconfirm $clean --log-level WARN \
    --distpath "$dist" --workpath "$work" packaging/pyinstaller/canvas-app.spec

# 3. Ship the desktop integration with the bundle: <bundle>/install-desktop.sh registers the menu
#    entry, MIME type and icons for the bundle's own executable.
bundle="$dist/canvas-app"
install -m 0755 "$root/packaging/install-desktop.sh" "$bundle/install-desktop.sh"
mkdir -p "$bundle/linux"
install -m 0644 "$root/packaging/linux/canvas-app.desktop" "$root/packaging/linux/canvas-app-mime.xml" "$bundle/linux/"

echo "built $bundle in $(( $(date +%s) - start )) s: $(du -sh "$bundle" | cut -f1), $(find "$bundle" -type f | wc -l) files"
echo "try: $bundle/canvas-app generate --prompt 'a red house' --out /tmp/canvas-app-test.png"
