#!/bin/bash
# test_architecture_doc: docs/ARCHITECTURE.md is where a newcomer looks up which file does what,
# so it must name every source file of the program (*.c and *.h under crypto/, util/, keystore/,
# kmip/, fs/ and tools/) and no file that is gone. A file counts as named when the document
# gives its path from the top of the tree (fs/header.c, as its "Files" section does): a bare
# name would not do, since several folders have a metrics.c or a status.c. Each file missing,
# and each named file that does not exist, is one line on stderr; exit 1 if any.
# Usage: test_architecture_doc.sh SOURCE_ROOT [DOCUMENT]
set -u

root=${1:-}
if [ -z "$root" ] || [ ! -d "$root" ]; then
	echo "test_architecture_doc: usage: test_architecture_doc.sh SOURCE_ROOT [DOCUMENT]" >&2
	exit 2
fi
doc=${2:-$root/docs/ARCHITECTURE.md}
if [ ! -r "$doc" ] || [ ! -f "$doc" ]; then
	echo "test_architecture_doc: $doc: cannot read the document" >&2
	exit 2
fi
cd "$root" || exit 2

dirs="crypto util keystore kmip fs tools"
# shellcheck disable=SC2086 # the folder list is split on purpose
files=$(find $dirs -type f \( -name '*.c' -o -name '*.h' \) | LC_ALL=C sort)
count=$(printf '%s\n' "$files" | grep -c .)
if [ "$count" -lt 50 ]; then
	echo "test_architecture_doc: $root: found only $count source files; is it the source tree?" >&2
	exit 2
fi

bad=0
while IFS= read -r file; do
	# The path, not as the tail of a longer one (fs/metrics.c is not tools/tderekey/metrics.c).
	pattern="(^|[^A-Za-z0-9_./-])$(printf '%s' "$file" | sed 's/[.]/[.]/g')([^A-Za-z0-9_/-]|$)"
	if grep -qE -- "$pattern" "$doc"; then
		continue
	fi
	echo "test_architecture_doc: $doc does not name $file" >&2
	bad=$((bad + 1))
done <<<"$files"

# Paths the document gives that name no file: a rename or removal left the entry behind.
for named in $(grep -oE "(^|[^A-Za-z0-9_./-])(crypto|util|keystore|kmip|fs|tools)/[a-z0-9_/]+[.][ch]\b" "$doc" |
	sed -E 's/^[^a-z]//' | LC_ALL=C sort -u); do
	if [ ! -f "$named" ]; then
		echo "test_architecture_doc: $doc names $named, which does not exist" >&2
		bad=$((bad + 1))
	fi
done

if [ "$bad" -gt 0 ]; then
	echo "test_architecture_doc: $bad problem(s) in $doc ($count source files)" >&2
	exit 1
fi
echo "test_architecture_doc: all $count source files named in $doc"
