# Sourced by the device scripts (docs/DEVICE.md) that log into one file: set root and logf first.
#   device_link_tree   the ctest files and test binaries of build-dev/ hold the absolute path of
#                      the tree they were configured in: link it to this tree where it is absent
#   log MSG...         "== MSG" to stdout and $logf
#   run CMD...         the command line and its output to stdout and $logf
#   drop               the page cache dropped (root)

device_link_tree() {
    local built_in
    built_in=$(sed -n 's/^CMAKE_HOME_DIRECTORY:INTERNAL=//p' "$root/build-dev/CMakeCache.txt")
    if [ -n "$built_in" ] && [ "$built_in" != "$root" ] && [ ! -e "$built_in" ]; then
        mkdir -p "$(dirname "$built_in")" && ln -s "$root" "$built_in"
    fi
}

log() { echo "== $*" | tee -a "$logf"; }
run() { echo "\$ $*" | tee -a "$logf"; "$@" 2>&1 | tee -a "$logf"; }
drop() { sync; echo 3 > /proc/sys/vm/drop_caches; }
