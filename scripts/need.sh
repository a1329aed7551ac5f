#!/usr/bin/env bash
# need.sh WHAT WHY PACKAGE...: make sure WHAT (a command name or an absolute
# path) exists; if not, install the Debian PACKAGEs with apt-get when root,
# otherwise fail saying what to install and why. Used by the Makefile so that
# `make test` works on a fresh Debian machine with only Go.
set -euo pipefail
what=$1 why=$2
shift 2
if [[ $what == /* ]]; then [[ -x $what ]] && exit 0; else command -v "$what" >/dev/null 2>&1 && exit 0; fi
if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null; then
	echo "make: $why: installing $* with apt-get" >&2
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq -o DPkg::Lock::Timeout=600 </dev/null
	apt-get install -y -qq -o DPkg::Lock::Timeout=600 --no-install-recommends "$@" </dev/null
else
	echo "make: $why, and $what is missing: apt-get install $*" >&2
	exit 1
fi
