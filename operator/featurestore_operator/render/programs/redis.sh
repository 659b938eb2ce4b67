exec redis-server - "$@" <<EOF
requirepass $REDIS_PASSWORD
EOF
