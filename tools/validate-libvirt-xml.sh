#!/usr/bin/env bash
# Validates the domain XML in docs/libvirt.md against libvirt's own schema, as virt-xml-validate does
# (xmllint --relaxng domain.rng), without installing libvirt: the Debian packages that carry the schema and
# xmllint (libvirt0, libxml2-utils) are downloaded with apt-get and unpacked into a temporary directory.
# Usage: tools/validate-libvirt-xml.sh [FILE.md|FILE.xml]   (default docs/libvirt.md: its ```xml block)
# Exit: 0 valid, 1 invalid, 3 cannot run here (no apt-get or no network).
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
SRC="${1:-$REPO/docs/libvirt.md}"
command -v apt-get >/dev/null && command -v dpkg-deb >/dev/null || { echo "validate: NEEDS: apt-get and dpkg-deb" >&2; exit 3; }
T="$(mktemp -d)"; chmod 0755 "$T"; trap 'rm -rf "$T"' EXIT
( cd "$T" && apt-get download libvirt0 libxml2-utils >/dev/null 2>&1 ) || { echo "validate: NEEDS: apt-get download (Debian mirror)" >&2; exit 3; }
for d in "$T"/*.deb; do dpkg-deb -x "$d" "$T/x"; done
if [[ "$SRC" == *.md ]]; then awk '/^```xml$/{f=1;next} /^```$/{f=0} f' "$SRC" >"$T/domain.xml"; else cp "$SRC" "$T/domain.xml"; fi
"$T/x/usr/bin/xmllint" --noout --relaxng "$T/x/usr/share/libvirt/schemas/domain.rng" "$T/domain.xml"
