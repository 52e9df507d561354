#!/usr/bin/env bash
# Builds local stand-ins for the base images that docker/Dockerfile and the lab's clients start
# FROM, for machines that cannot pull from an image registry. Where a registry is reachable this
# script is not needed: `docker build` pulls the official images.
#
#   debian:bookworm-slim     a debootstrapped Debian 12 (minbase), slimmed as the official image
#                            is (no docs, man pages or locales; apt lists removed)
#   rust:<ver>-slim-bookworm that image with gcc and libc6-dev, and the host's Rust toolchain
#                            (cargo and rustc only) in /usr/local/rustup, on PATH through
#                            /usr/local/cargo/bin as in the official image
#
# Both carry the host's CA bundle (/etc/ssl/certs/ca-certificates.crt), also in
# /usr/local/share/ca-certificates so that it survives update-ca-certificates: where HTTPS goes
# through an intercepting proxy, cargo then reaches crates.io from inside a build. apt uses plain
# http://deb.debian.org.
#
# Idempotent: an image that exists is left alone (`docker rmi` it to build it again). Needs root
# (debootstrap), the `debootstrap` package, and for the rust image a rustup toolchain of the
# version the Dockerfile names (`rustup show`).
set -euo pipefail
cd "$(dirname "$0")"

# The names come from the Dockerfile's FROM lines, so that the two cannot disagree.
DEBIAN_IMAGE=$(sed -n 's/^FROM \(debian:[^ ]*\).*/\1/p' Dockerfile | head -n1)
RUST_IMAGE=$(sed -n 's/^FROM \(rust:[^ ]*\).*/\1/p' Dockerfile | head -n1)
: "${DEBIAN_IMAGE:?no FROM debian:... line in docker/Dockerfile}"
: "${RUST_IMAGE:?no FROM rust:... line in docker/Dockerfile}"
SUITE=${DEBIAN_IMAGE#debian:}
SUITE=${SUITE%-slim}
MIRROR=${DEBIAN_MIRROR:-http://deb.debian.org/debian}
CA_BUNDLE=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}

have() { docker image inspect "$1" >/dev/null 2>&1; }
log() { echo "base-images: $*" >&2; }

work=$(mktemp -d /tmp/pyvmd-base-images.XXXXXX)
cleanup() {
    # debootstrap may leave /proc and /sys mounted in the root when it fails.
    for m in proc sys dev/pts dev; do
        mountpoint -q "$work/root/$m" 2>/dev/null && umount -l "$work/root/$m" || true
    done
    rm -rf "$work"
}
trap cleanup EXIT

build_debian() {
    log "building $DEBIAN_IMAGE with debootstrap ($SUITE from $MIRROR)"
    command -v debootstrap >/dev/null || { log "debootstrap is not installed"; exit 1; }
    local root=$work/root
    debootstrap --variant=minbase --components=main "$SUITE" "$root" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
        tail -n 30 "$work/debootstrap.log" >&2
        exit 1
    }

    # What the official slim image does (debuerreotype's slimify and its apt settings).
    cat >"$root/etc/dpkg/dpkg.cfg.d/docker" <<'EOF'
# The "slim" variant: files that containers do not need are not installed.
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/groff/*
path-exclude /usr/share/info/*
path-exclude /usr/share/linda/*
path-exclude /usr/share/lintian/overrides/*
path-exclude /usr/share/locale/*
path-exclude /usr/share/man/*
EOF
    cat >"$root/etc/apt/apt.conf.d/docker-clean" <<'EOF'
DPkg::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
APT::Update::Post-Invoke { "rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true"; };
Dir::Cache::pkgcache "";
Dir::Cache::srcpkgcache "";
EOF
    echo 'Acquire::Languages "none";' >"$root/etc/apt/apt.conf.d/docker-no-languages"
    echo 'Acquire::GzipIndexes "true";' >"$root/etc/apt/apt.conf.d/docker-gzip-indexes"
    echo 'Apt::AutoRemove::SuggestsImportant "false";' >"$root/etc/apt/apt.conf.d/docker-autoremove-suggests"
    printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
    chmod 755 "$root/usr/sbin/policy-rc.d"
    rm -f "$root/etc/apt/sources.list"
    cat >"$root/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: ${MIRROR%/debian}/debian-security
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    find "$root/usr/share/doc" -mindepth 1 -not -name copyright -not -type d -delete 2>/dev/null || true
    find "$root/usr/share/doc" -mindepth 1 -type d -empty -delete 2>/dev/null || true
    rm -rf "$root"/usr/share/{man,groff,info,linda,lintian/overrides}/* "$root"/usr/share/locale/*
    rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/* "$root"/var/cache/debconf/*-old \
        "$root"/var/log/* "$root"/tmp/* "$root"/root/.bash_history
    : >"$root/etc/hostname"
    : >"$root/etc/resolv.conf"

    # The host's CA bundle: in the place every TLS client reads, and where update-ca-certificates
    # (run when a build installs the ca-certificates package) takes local authorities from.
    mkdir -p "$root/etc/ssl/certs" "$root/usr/local/share/ca-certificates"
    cp "$CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
    cp "$CA_BUNDLE" "$root/usr/local/share/ca-certificates/host-ca-bundle.crt"

    tar --numeric-owner --xattrs -C "$root" -c . |
        docker import --change 'CMD ["bash"]' - "$DEBIAN_IMAGE" >/dev/null
    rm -rf "$root"
    log "built $DEBIAN_IMAGE"
}

build_rust() {
    local version=${RUST_IMAGE#rust:}
    version=${version%%-*}
    log "building $RUST_IMAGE from $DEBIAN_IMAGE and the host's Rust $version toolchain"
    # The default toolchain, or any installed one, whose rustc has that version (no download).
    local sysroot="" candidate found=""
    for candidate in "$(rustc --print sysroot 2>/dev/null)" "${RUSTUP_HOME:-$HOME/.rustup}"/toolchains/*; do
        [ -x "$candidate/bin/rustc" ] && [ -x "$candidate/bin/cargo" ] || continue
        found=$("$candidate/bin/rustc" --version | awk '{print $2}')
        case "$found" in
        "$version" | "$version".*)
            sysroot=$candidate
            break
            ;;
        esac
    done
    if [ -z "$sysroot" ]; then
        log "$RUST_IMAGE needs Rust $version: no installed toolchain has it (rustup show)"
        exit 1
    fi
    log "using the toolchain in $sysroot (rustc $found)"

    # What cargo and rustc need, nothing more: no docs, rustdoc, clippy, rustfmt or debuggers.
    local ctx=$work/rust toolchain=$work/rust/toolchain
    mkdir -p "$toolchain/bin" "$toolchain/lib/rustlib/x86_64-unknown-linux-gnu"
    cp -a "$sysroot/bin/cargo" "$sysroot/bin/rustc" "$toolchain/bin/"
    cp -a "$sysroot"/lib/*.so* "$toolchain/lib/"
    cp -a "$sysroot/lib/rustlib/x86_64-unknown-linux-gnu/lib" \
        "$sysroot/lib/rustlib/x86_64-unknown-linux-gnu/bin" \
        "$toolchain/lib/rustlib/x86_64-unknown-linux-gnu/"
    cat >"$ctx/Dockerfile" <<EOF
FROM $DEBIAN_IMAGE
ENV RUSTUP_HOME=/usr/local/rustup \\
    CARGO_HOME=/usr/local/cargo \\
    PATH=/usr/local/cargo/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    RUST_VERSION=$found
RUN apt-get update \\
    && apt-get install -y --no-install-recommends ca-certificates gcc libc6-dev \\
    && rm -rf /var/lib/apt/lists/*
COPY toolchain /usr/local/rustup/toolchains/$found-x86_64-unknown-linux-gnu
RUN mkdir -p /usr/local/cargo/bin \\
    && ln -s /usr/local/rustup/toolchains/$found-x86_64-unknown-linux-gnu/bin/cargo \\
        /usr/local/rustup/toolchains/$found-x86_64-unknown-linux-gnu/bin/rustc /usr/local/cargo/bin/ \\
    && chmod -R a+w /usr/local/cargo \\
    && cargo --version && rustc --version
EOF
    docker build --quiet -t "$RUST_IMAGE" "$ctx" >/dev/null
    rm -rf "$ctx"
    log "built $RUST_IMAGE"
}

if have "$DEBIAN_IMAGE"; then
    log "$DEBIAN_IMAGE exists"
else
    build_debian
fi
if have "$RUST_IMAGE"; then
    log "$RUST_IMAGE exists"
else
    build_rust
fi
