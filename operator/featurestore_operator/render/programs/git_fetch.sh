url="$1"; ref="$2"
git init -q /repo
git -C /repo fetch -q --depth 1 -- "$url" "$ref"
git -C /repo -c advice.detachedHead=false checkout -q FETCH_HEAD
head=$(git -C /repo rev-parse HEAD)
echo "$head"
case "$ref" in *[!0-9a-f]*) ;; *) [ "${#ref}" -ne 40 ] || [ "$head" = "$ref" ] || { echo "fetched $head, not $ref" >&2; exit 1; } ;; esac
