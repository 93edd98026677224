#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Each match extension with real traffic (length, iprange, ttl, comment, mark, statistic,
# addrtype, limit, quota): a rule in the router's FORWARD chain drops what it matches; the client's
# pings show what passed. One case per line: replies expected of 4 echo requests, ping
# options, rule. Every request is accounted for: its reply arrived, or the rule counted the
# request or its reply as dropped.
# cost: 30
. "$(dirname "$0")/lib.sh"

rnf_load || { fail "insmod"; finish; }
topo_up || { fail "topology"; finish; }

match_case 0 "-s 1000" -m length --length 1000:2000 -j DROP
match_case 4 "-s 10" -m length --length 1000:2000 -j DROP
match_case 4 "-s 1000" -m length ! --length 1000:2000 -j DROP
match_case 0 "" -m iprange --src-range 10.0.1.1-10.0.1.5 -j DROP
match_case 0 "" -m iprange --dst-range 10.0.1.1-10.0.1.5 -j DROP
match_case 4 "" -m iprange ! --src-range 10.0.0.0-10.0.255.255 -j DROP
match_case 0 "-t 5" -m ttl --ttl-lt 10 -j DROP
match_case 4 "-t 64" -m ttl --ttl-lt 10 -j DROP
# The router decrements the TTL before its FORWARD hook.
match_case 0 "-t 64" -m ttl --ttl-eq 63 -j DROP
match_case 4 "-t 64" -m ttl --ttl-gt 63 -j DROP
match_case 0 "" -m comment --comment "drop everything" -j DROP
match_case 4 "" -m mark --mark 0x1 -j DROP
match_case 0 "" -m mark ! --mark 0x1 -j DROP
match_case 2 "" -p icmp --icmp-type echo-request -m statistic --mode nth --every 2 --packet 0 -j DROP
match_case 0 "" -m statistic --mode random --probability 1 -j DROP
match_case 4 "" -m statistic --mode random --probability 0 -j DROP
match_case 4 "" -m addrtype --dst-type LOCAL -j DROP
match_case 0 "" -m addrtype --dst-type UNICAST -j DROP
# A limit of burst 2: the first two requests match (and are dropped), then the rate holds.
match_case 2 "" -p icmp --icmp-type echo-request -m limit --limit 1/hour --limit-burst 2 -j DROP
# 200 bytes: two 84-byte requests are spent and dropped; the third does not fit, and from then
# on nothing matches. Inverted: the first request and its reply pass, then all is dropped.
match_case 2 "" -m quota --quota 200 -j DROP
match_case 1 "" -m quota ! --quota 200 -j DROP
finish
