#!/usr/bin/env bash
# Adds every public symbol the build reports as undeclared (RS0016) to src/GigaPath/PublicAPI.Unshipped.txt, so a
# deliberate public API change becomes a reviewed diff of that file. Removed symbols (RS0017) are listed for the
# developer to delete by hand. Usage: tools/update-public-api.sh
set -euo pipefail
cd "$(dirname "$0")/.."
api=src/GigaPath/PublicAPI.Unshipped.txt
log=$(mktemp)
dotnet build src/GigaPath -c Debug --no-incremental -p:TreatWarningsAsErrors=false >"$log" 2>&1 || true
added=$(grep -oP "RS0016: Symbol '\K.*(?=' is not part of the declared public API)" "$log" | sort -u || true)
removed=$(grep -oP "RS0017: Symbol '\K.*(?=' is part of the declared API, but)" "$log" | sort -u || true)
if [ -n "$added" ]; then
  { cat "$api"; printf '%s\n' "$added"; } | awk 'NR == 1 || !seen[$0]++' > "$api.tmp" && mv "$api.tmp" "$api"
  echo "added $(wc -l <<<"$added") line(s) to $api"
fi
[ -n "$removed" ] && { echo "no longer public (delete from PublicAPI.*.txt):"; printf '  %s\n' "$removed"; }
rm -f "$log"
