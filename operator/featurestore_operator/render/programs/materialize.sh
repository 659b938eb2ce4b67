feast -f "$FEAST_FS_YAML_FILE_PATH" materialize-incremental "$(date -u +%Y-%m-%dT%H:%M:%S)" "$@"
rc=$?
python - > /dev/termination-log 2>/dev/null <<'PY' || true
@FRESHNESS_SUMMARY@
PY
exit $rc
