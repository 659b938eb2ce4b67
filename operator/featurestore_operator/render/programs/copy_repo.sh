set -eu
for f in /repo-source/* /repo-source/.[!.]*; do
  [ -e "$f" ] || continue
  cp -L "$f" /repo/
done
