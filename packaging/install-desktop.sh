#!/usr/bin/env bash
# Install (or remove) the desktop entry, the project-file MIME type and the icons for the current user,
# following the XDG base directory spec: everything goes under ${XDG_DATA_HOME:-~/.local/share}.
#
#   packaging/install-desktop.sh [--exec COMMAND] [--dry-run]
#   packaging/install-desktop.sh --uninstall
#
# --exec sets the command the menu entry runs (default: the bundle's canvas-app when this script sits
# in a built bundle, else `canvas-app` from PATH, as installed by pip).
set -euo pipefail

APP_ID=canvas-app
MIME_ID=application-x-canvas-app-project
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

usage() { sed -n '2,9p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; }

mode=install
exec_cmd=""
dry_run=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --uninstall) mode=uninstall ;;
        --exec) [[ $# -ge 2 ]] || { echo "error: --exec needs a command" >&2; exit 2; }; exec_cmd="$2"; shift ;;
        --exec=*) exec_cmd="${1#--exec=}" ;;
        --dry-run) dry_run=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "error: unknown argument: $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

# Where the files to install are: a source checkout (packaging/ beside resources/) or a built bundle
# (this script copied to the bundle root, the data under _internal/).
if [[ -f "$here/linux/$APP_ID.desktop" && -d "$here/../resources/icons" ]]; then
    linux_dir="$here/linux"; icons_src="$here/../resources/icons"; default_exec="$APP_ID"
elif [[ -f "$here/linux/$APP_ID.desktop" && -d "$here/_internal/resources/icons" ]]; then
    linux_dir="$here/linux"; icons_src="$here/_internal/resources/icons"; default_exec="$here/$APP_ID"
else
    echo "error: cannot find the desktop files and icons next to $here" >&2
    exit 1
fi
exec_cmd="${exec_cmd:-$default_exec}"

data_home="${XDG_DATA_HOME:-$HOME/.local/share}"
if [[ "$data_home" != /* ]]; then
    # The spec says a relative XDG_DATA_HOME is invalid and must be ignored.
    data_home="$HOME/.local/share"
fi
apps_dir="$data_home/applications"
mime_dir="$data_home/mime"
icons_dir="$data_home/icons/hicolor"

run() {
    if [[ $dry_run -eq 1 ]]; then echo "+ $*"; else "$@"; fi
}

refresh_caches() {
    # Each tool is optional: desktops rescan on their own, the caches only make it immediate.
    if command -v update-mime-database >/dev/null; then run update-mime-database "$mime_dir" || true; fi
    if command -v update-desktop-database >/dev/null; then run update-desktop-database -q "$apps_dir" || true; fi
    if command -v gtk-update-icon-cache >/dev/null && [[ -f "$icons_dir/index.theme" ]]; then
        run gtk-update-icon-cache -q -f -t "$icons_dir" || true
    fi
}

icon_files() {
    # Paths relative to the hicolor folder: <size>/<context>/<name>.<ext>
    (cd "$icons_src/hicolor" && find . -type f \( -name "$APP_ID.*" -o -name "$MIME_ID.*" \) | sed 's|^\./||' | sort)
}

desktop_exec_value() {
    # Desktop Entry Exec quoting: a path with spaces is double-quoted; characters that would need
    # escaping inside the quotes (or in the sed below) are refused rather than half-escaped.
    local cmd="$1"
    if [[ "$cmd" == *[\"\`\$\\\&\|]* ]]; then
        echo "error: --exec path contains one of \" \` \$ \\ & | (quote, backtick, dollar, ...): $cmd" >&2
        exit 2
    fi
    if [[ "$cmd" == *" "* ]]; then printf '"%s"' "$cmd"; else printf '%s' "$cmd"; fi
}

install_all() {
    local exec_value
    exec_value="$(desktop_exec_value "$exec_cmd")"
    run mkdir -p "$apps_dir" "$mime_dir/packages" "$icons_dir"
    local rel
    while IFS= read -r rel; do
        run install -D -m 0644 "$icons_src/hicolor/$rel" "$icons_dir/$rel"
    done < <(icon_files)
    run install -m 0644 "$linux_dir/$APP_ID-mime.xml" "$mime_dir/packages/$APP_ID.xml"
    if [[ $dry_run -eq 1 ]]; then
        echo "+ write $apps_dir/$APP_ID.desktop (Exec=$exec_value ...)"
    else
        # Only the command changes; its arguments stay as the template has them.
        sed -e "s|^Exec=$APP_ID |Exec=$exec_value |" -e "s|^TryExec=.*|TryExec=$exec_cmd|" \
            "$linux_dir/$APP_ID.desktop" >"$apps_dir/$APP_ID.desktop"
        chmod 0644 "$apps_dir/$APP_ID.desktop"
    fi
    refresh_caches
    echo "installed $APP_ID desktop entry, MIME type and icons under $data_home (Exec: $exec_cmd)"
}

uninstall_all() {
    local rel
    while IFS= read -r rel; do
        run rm -f "$icons_dir/$rel"
    done < <(icon_files)
    run rm -f "$apps_dir/$APP_ID.desktop" "$mime_dir/packages/$APP_ID.xml"
    refresh_caches
    echo "removed $APP_ID desktop entry, MIME type and icons from $data_home"
}

if [[ $mode == install ]]; then install_all; else uninstall_all; fi
