#!/usr/bin/env bash
# Start MariaDB if it is not answering, and wait until it does.  Idempotent; root.
set -euo pipefail
ping() { mariadb-admin --user=root --connect-timeout=2 ping >/dev/null 2>&1; }
ping && exit 0
if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
    systemctl start mariadb
else
    install -d -o mysql -g mysql /run/mysqld
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
fi
for _ in $(seq 1 120); do ping && exit 0; sleep 0.5; done
echo "ensure_mariadb.sh: MariaDB did not start" >&2
exit 1
