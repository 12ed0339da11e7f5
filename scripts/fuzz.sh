#!/usr/bin/env bash
# Runs every fuzz target in the module for a bounded time each
# (FUZZTIME, default 20s). Fuzz targets that need root (BPF programs) are
# run too when the caller is root. A crash leaves its input under
# testdata/fuzz/ of the package, as `go test -fuzz` does, and fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${FUZZTIME:-20s}
go=${GO:-go}
failed=0
while IFS=: read -r file name; do
	pkg=./$(dirname "$file")
	echo "fuzz: $pkg $name ($fuzztime)"
	if ! $go test -run '^$' -fuzz "^${name}\$" -fuzztime "$fuzztime" "$pkg"; then
		failed=1
	fi
done < <(grep -rHoP '^func \KFuzz\w+(?=\(f \*testing\.F\))' --include='*_test.go' . | sed 's#^\./##' | sort)
exit $failed
