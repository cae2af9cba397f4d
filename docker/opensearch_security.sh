#!/bin/bash
# One-shot for docker-compose's `opensearch-security` service (it runs in the OpenSearch image): writes
# the security plugin's configuration into OUT_DIR (the opensearch-security volume, which OpenSearch
# mounts over config/opensearch-security, hiding the image's demo files):
#   - internal_users.yml: the one user, admin, with a bcrypt hash of $OPENSEARCH_INITIAL_ADMIN_PASSWORD
#     made by the plugin's own hash tool (it reads the variable itself: the password is never an
#     argument, never printed, never written anywhere but as its hash);
#   - config.yml, roles.yml, roles_mapping.yml, action_groups.yml, tenants.yml, nodes_dn.yml,
#     allowlist.yml, audit.yml (every file securityadmin.sh -cd loads): copied from STATIC_DIR
#     (docker/opensearch-security/ of this repository).
# OpenSearch loads these into its security index at its first start
# (plugins.security.allow_default_init_securityindex); see README "Deploy" for changing them later.
# Usage: opensearch_security.sh HASH_TOOL STATIC_DIR OUT_DIR [OWNER]  (OWNER: chown target, e.g. 1000:1000)
set -euo pipefail
hash_tool=$1 static_dir=$2 out_dir=$3 owner=${4:-}
: "${OPENSEARCH_INITIAL_ADMIN_PASSWORD:?set OPENSEARCH_INITIAL_ADMIN_PASSWORD in .env}"
static_files=(config.yml roles.yml roles_mapping.yml action_groups.yml tenants.yml nodes_dn.yml allowlist.yml audit.yml)

hash=$("$hash_tool" -env OPENSEARCH_INITIAL_ADMIN_PASSWORD -a BCrypt | tail -n 1)
if ! [[ $hash =~ ^\$2[aby]\$[0-9]{2}\$[./A-Za-z0-9]{53}$ ]]; then
  echo "the hash tool did not print a bcrypt hash" >&2
  exit 1
fi

umask 077
mkdir -p -- "$out_dir"
tmp=$(mktemp -d -- "$out_dir/.write-XXXXXX")
for f in "${static_files[@]}"; do
  cp -- "$static_dir/$f" "$tmp/$f"
done
cat > "$tmp/internal_users.yml" <<YAML
# Written by docker/opensearch_security.sh from .env at set-up; the only user of the stack.
_meta:
  type: "internalusers"
  config_version: 2
admin:
  hash: "$hash"
  reserved: true
  description: "the stack's admin (OPENSEARCH_INITIAL_ADMIN_PASSWORD in .env)"
YAML
for f in "${static_files[@]}" internal_users.yml; do
  mv -f -- "$tmp/$f" "$out_dir/$f"
done
rmdir -- "$tmp"
if [ -n "$owner" ]; then
  chown -R -- "$owner" "$out_dir"
fi
chmod -R u=rwX,go= -- "$out_dir"
echo "wrote the security configuration (${static_files[*]} internal_users.yml) to $out_dir"
