#!/bin/sh
# set-uid.sh USER ID PATH...: give USER (and its group) the uid/gid ID, as the official images
# do (999), moving whichever account held ID out of the way, and chown PATHs to it.
set -eu
user=$1 id=$2; shift 2
other=$(getent passwd "$id" | cut -d: -f1 || true)
[ -n "$other" ] && [ "$other" != "$user" ] && usermod -u 5999 "$other"
group=$(getent group "$id" | cut -d: -f1 || true)
[ -n "$group" ] && [ "$group" != "$user" ] && groupmod -g 5999 "$group"
groupmod -g "$id" "$user"
usermod -u "$id" -g "$id" "$user"
chown -R "$id:$id" "$@"
