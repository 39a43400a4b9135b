#!/usr/bin/env bash
# Makes the image every example uses, 127.0.0.1:5000/rcompose/busybox:latest,
# from Debian's busybox-static, without any registry: a root filesystem with
# busybox and its applets, a passwd/group, and a page at /www/index.html,
# imported into rcompose's store with `rcompose image import`.
# Usage: scripts/example-image.sh RCOMPOSE_BINARY
set -euo pipefail
bin=${1:?usage: $0 RCOMPOSE_BINARY}
image=127.0.0.1:5000/rcompose/busybox:latest
busybox=$(command -v busybox || true)
[ -x /bin/busybox ] && busybox=/bin/busybox
if [ -z "$busybox" ]; then
  echo "example-image: busybox not found (install busybox-static)" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
root=$work/rootfs
mkdir -p "$root"/{bin,etc,www,tmp,root,var/lib}
chmod 1777 "$root/tmp"
cp "$busybox" "$root/bin/busybox"
for applet in $("$busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
printf '<!doctype html>\n<title>rcompose</title>\n<h1>Hello from rcompose</h1>\n' >"$root/www/index.html"
tar -C "$root" -cf "$work/rootfs.tar" .
"$bin" image import --cmd '["sh"]' "$work/rootfs.tar" "$image" >/dev/null
echo "example-image: $image"
