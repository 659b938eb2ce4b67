export GIT_TERMINAL_PROMPT=0
if [ -n "${GIT_TOKEN:-}" ]; then
  git config --global credential.helper '!f() { echo username=x-access-token; echo "password=${GIT_TOKEN}"; }; f'
fi
if [ -f /etc/git-secret/ssh-privatekey ]; then
  export GIT_SSH_COMMAND="ssh -i /etc/git-secret/ssh-privatekey -o IdentitiesOnly=yes -o BatchMode=yes \
-o StrictHostKeyChecking=yes -o UserKnownHostsFile=/etc/git-secret/known_hosts"
fi
