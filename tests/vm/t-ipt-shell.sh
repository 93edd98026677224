#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# iptables' own shell tests (tests/golden/iptables/shell, from iptables 1.8.9): each script in
# a fresh network namespace, with rnfctl as iptables, iptables-save and iptables-restore, must
# exit with the status its name ends in (as iptables-legacy's does in this VM).
# cost: 100
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
S=$(cd "$(dirname "$0")/../golden/iptables/shell" && pwd)
# XT_MULTI: the multi-call binary the scripts run as `$XT_MULTI iptables ...`.
XT=$TMPD/xt-multi
cat >"$XT" <<EOS
#!/bin/bash
cmd=\$1; shift
case \$cmd in
iptables | iptables-save | iptables-restore) exec "$RNF_BIN/\$cmd" "\$@" ;;
*) echo "\$cmd: not provided" >&2; exit 127 ;;
esac
EOS
chmod +x "$XT"
n=0
for t in "$S"/*/*_[0-9]*; do
	name=${t#"$S"/}
	want=${t##*_}
	n=$((n + 1))
	ns="$PFX-sh$n"
	ns_add "$ns" || { fail "netns for $name"; continue; }
	# (mktemp and friends write under TMPDIR.)
	out=$(cd "$(dirname "$t")" && TMPDIR=$TMPD nsx "$ns" timeout 300 env XT_MULTI="$XT" bash "$t" 2>&1)
	rc=$?
	if [ "$rc" = "$want" ]; then
		log "ok: $name (exit $rc)"
	else
		fail "$name: exit $rc, expected $want"
		tail -12 <<<"$out" | sed 's/^/        /'
	fi
done
expect_ge "scripts run" "$n" 21
finish
