#!/usr/bin/env bash
# Build the tests' sys_eval/sys_exec UDF (sys_eval.c) against Debian's MariaDB
# headers (libmariadb-dev), install it into the running server's plugin
# directory and register both functions.  Idempotent; runs as root.
# A server that already has sys_eval/sys_exec from another library (SWAMP's
# lib_mysqludf_sys.so) keeps them: they behave the same.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
SO=swampd_test_sys.so
mysql=(mariadb --user=root --batch --skip-column-names)

command -v mariadb_config >/dev/null || { echo "build_udf.sh: mariadb_config missing (apt-get install libmariadb-dev)" >&2; exit 1; }
plugin_dir=$("${mysql[@]}" -e 'SELECT @@plugin_dir')
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
# shellcheck disable=SC2046  # mariadb_config prints several -I words
gcc -Wall -Wextra -O2 -fPIC -shared $(mariadb_config --include) "$here/sys_eval.c" -o "$build/$SO"

changed=0
if ! cmp -s "$build/$SO" "$plugin_dir/$SO"; then
    install -m 0755 "$build/$SO" "$plugin_dir/$SO.new"
    mv -f "$plugin_dir/$SO.new" "$plugin_dir/$SO"   # a rename: a loaded copy stays intact
    changed=1
fi
for fn in sys_eval:STRING sys_exec:INTEGER; do
    name=${fn%%:*} type=${fn#*:}
    dl=$("${mysql[@]}" -e "SELECT dl FROM mysql.func WHERE name='$name'")
    if [ -z "$dl" ]; then
        "${mysql[@]}" -e "CREATE FUNCTION $name RETURNS $type SONAME '$SO'"
    elif [ "$dl" = "$SO" ] && [ "$changed" = 1 ]; then
        "${mysql[@]}" -e "DROP FUNCTION $name; CREATE FUNCTION $name RETURNS $type SONAME '$SO'"
    fi
done
