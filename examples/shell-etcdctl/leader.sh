#!/bin/bash
# A leader program with no Python in it: a bash script that takes an etcd lock with
# `etcdctl` (a lease and a create-if-absent transaction, the way cron scripts do it) and
# does its leader-only writes over bash's /dev/tcp. It speaks the harness protocol of
# docs/CANDIDATE.md by appending JSON lines to $HARNESS_HISTORY, stamped with the wall
# clock (`wall_ns`, from `date +%s%N`).
#
# Naive on purpose: it keeps its lease alive between writes and acts until a keep-alive
# says the lease is gone, so a pause longer than the lease catches it.
set -u

TTL=2
ETCDCTL="$HARNESS_SERVER_BIN/etcdctl --endpoints=$HARNESS_ENDPOINT --command-timeout=1s"
KEY="lock/$HARNESS_ELECTION"
ME="p$HARNESS_PROCESS"
RES="${HARNESS_RESOURCE#http://}"
RES_HOST="${RES%:*}"
RES_PORT="${RES##*:}"
SEQ=0

record() {  # record TYPE F [VALUE-JSON]
    local value=""
    [ $# -ge 3 ] && value=",\"value\":$3"
    printf '{"wall_ns":%s,"type":"%s","f":"%s"%s}\n' "$(date +%s%N)" "$1" "$2" "$value" \
        >>"$HARNESS_HISTORY"
}

write() {  # write TOKEN: one leader-only write; records invoke and its outcome
    local token=$1 body reply status
    body="{\"token\":$token,\"seq\":$SEQ,\"process\":$HARNESS_PROCESS}"
    record invoke write "{\"token\":$token,\"seq\":$SEQ}"
    SEQ=$((SEQ + 1))
    if ! exec 3<>"/dev/tcp/$RES_HOST/$RES_PORT"; then
        record info write '{"error":"connect"}'
        return
    fi
    printf 'POST /write HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %s\r\nConnection: close\r\n\r\n%s' \
        "$RES" "${#body}" "$body" >&3
    reply=$(timeout 1 cat <&3)
    exec 3<&-
    status=$(printf '%s' "$reply" | head -n1 | cut -d' ' -f2)
    case "$status" in
        200) record ok write "{\"applied_at\":$(printf '%s' "$reply" | sed -n 's/.*"applied_at": *\([0-9]*\).*/\1/p')}" ;;
        409) record fail write '{"error":"fenced"}' ;;
        *) record info write "{\"error\":\"HTTP ${status:-none}\"}" ;;
    esac
}

while true; do
    record invoke acquire
    lease=$($ETCDCTL lease grant $TTL 2>/dev/null | awk '{print $2}')
    if [ -z "$lease" ]; then
        record info acquire '{"error":"lease grant"}'
        sleep 0.2
        continue
    fi
    # Create the key only if absent, in one transaction; the fencing token is that
    # transaction's revision (the key's create revision). Reading it afterwards with a
    # separate `get` would be a bug: the key may have expired and been re-created by
    # another holder in between (the checker finds that as duplicate-token).
    answer=$(printf 'create("%s") = "0"\n\nput --lease=%s %s %s\n\n\n' "$KEY" "$lease" "$KEY" "$ME" \
        | $ETCDCTL txn -w json 2>/dev/null)
    case "$answer" in
        *'"succeeded":true'*) ;;
        *'"header"'*)
            record fail acquire
            $ETCDCTL lease revoke "$lease" >/dev/null 2>&1
            sleep 0.2
            continue ;;
        *)
            record info acquire '{"error":"txn"}'
            $ETCDCTL lease revoke "$lease" >/dev/null 2>&1
            sleep 0.2
            continue ;;
    esac
    token=$(printf '%s' "$answer" | sed -n 's/.*"header":{[^}]*"revision":\([0-9]*\).*/\1/p')
    record ok acquire "{\"token\":$token}"
    renewed=$(date +%s%N)
    while true; do
        write "$token"
        if [ $(( $(date +%s%N) - renewed )) -ge 400000000 ]; then
            renewed=$(date +%s%N)
            answer=$($ETCDCTL lease keep-alive --once "$lease" 2>&1)
            case "$answer" in
                *keepalived*) ;;
                *"expired or revoked"*|*"not found"*)
                    record info lost '{"reason":"keep-alive: lease gone"}'
                    break ;;
                *) ;;  # no answer: no news
            esac
        fi
        sleep 0.05
    done
done
