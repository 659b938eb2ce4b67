url="$1"; ref="$2"; log=/dev/termination-log
fail() { printf '{"v":1,"error":"%s"}\n' "$1" > "$log"; echo "resolving $ref failed: $1" >&2; exit 1; }
if ! refs=$(git ls-remote -- "$url" "$ref" "$ref^{}" 2>/tmp/ls-remote.err); then
  cat /tmp/ls-remote.err >&2
  e=/tmp/ls-remote.err
  grep -qiE 'host key verification failed|no .* host key is known|REMOTE HOST IDENTIFICATION' $e && fail hostkey
  grep -qiE 'authentication failed|could not read (username|password)|permission denied|401|403' $e && fail auth
  grep -qiE 'not found|does not appear to be a git repository|404' $e && fail notfound
  fail unreachable
fi
found=$(printf '%s\n' "$refs" | awk -v r="$ref" '
  $2 == r { c[1] = $1; n[1] = $2 }
  $2 == "refs/" r { c[2] = $1; n[2] = $2 }
  $2 == "refs/tags/" r "^{}" { c[3] = $1; n[3] = "refs/tags/" r }
  $2 == "refs/tags/" r { c[4] = $1; n[4] = $2 }
  $2 == "refs/heads/" r { c[5] = $1; n[5] = $2 }
  END { for (i = 1; i <= 5; i++) if (i in c) { print c[i], n[i]; exit } }')
[ -n "$found" ] || fail notfound
commit=${found%% *}; name=${found#* }
printf '{"v":1,"ref":"%s","commit":"%s"}\n' "$name" "$commit" > "$log"
echo "$ref -> $commit ($name)"
