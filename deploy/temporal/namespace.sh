#!/bin/sh
# Creates the lab's namespace and registers the custom search attributes its workflows
# use (run by the `temporal-namespace` one-shot of docker-compose.yml, in the
# temporalio/admin-tools image, once the server is healthy). Idempotent: what exists is
# left as it is. The attribute list must equal workflows/constants.SEARCH_ATTRIBUTES; a
# test runs this script against a real server and compares.
set -eu

: "${TEMPORAL_ADDRESS:?host:port of the frontend}"
: "${TEMPORAL_NAMESPACE:=default}"
: "${TEMPORAL_RETENTION:=72h}"

SEARCH_ATTRIBUTES="
StratlabPhase Keyword
StratlabOutcome Keyword
StratlabSymbol Keyword
StratlabRole Keyword
StratlabPromptId Keyword
StratlabGeneration Int
StratlabSymbols KeywordList
"

ns="--namespace $TEMPORAL_NAMESPACE --address $TEMPORAL_ADDRESS"

tries=0
until temporal operator cluster health --address "$TEMPORAL_ADDRESS" >/dev/null 2>&1; do
    tries=$((tries + 1))
    if [ "$tries" -ge 60 ]; then
        echo "temporal-namespace: no healthy server at $TEMPORAL_ADDRESS after 120 s" >&2
        exit 1
    fi
    sleep 2
done

# shellcheck disable=SC2086  # $ns is two flags with values, split on purpose
if temporal operator namespace describe $ns >/dev/null 2>&1; then
    echo "temporal-namespace: namespace $TEMPORAL_NAMESPACE exists"
else
    temporal operator namespace create $ns --retention "$TEMPORAL_RETENTION"
    echo "temporal-namespace: namespace $TEMPORAL_NAMESPACE created"
fi

# A new namespace can take a moment to be visible to the search-attribute API.
existing=""
for _ in 1 2 3 4 5 6 7 8 9 10; do
    # shellcheck disable=SC2086
    if existing=$(temporal operator search-attribute list $ns -o json 2>/dev/null); then
        break
    fi
    sleep 1
done

echo "$SEARCH_ATTRIBUTES" | while read -r name type; do
    [ -n "$name" ] || continue
    if echo "$existing" | grep -q "\"$name\""; then
        echo "temporal-namespace: search attribute $name exists"
        continue
    fi
    # shellcheck disable=SC2086
    temporal operator search-attribute create $ns --name "$name" --type "$type"
    echo "temporal-namespace: search attribute $name ($type) registered"
done
