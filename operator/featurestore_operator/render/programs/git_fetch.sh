set -eu
url="$1"; ref="$2"
if [ -n "${GIT_TOKEN:-}" ]; then
  git config --global credential.helper '!f() { echo username=x-access-token; echo "password=${GIT_TOKEN}"; }; f'
fi
if [ -f /etc/git-secret/ssh-privatekey ]; then
  export GIT_SSH_COMMAND="ssh -i /etc/git-secret/ssh-privatekey -o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=/tmp/known_hosts"
fi
git init -q /repo
git -C /repo fetch -q --depth 1 -- "$url" "$ref"
git -C /repo -c advice.detachedHead=false checkout -q FETCH_HEAD
git -C /repo rev-parse HEAD
