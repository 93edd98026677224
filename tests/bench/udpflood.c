// SPDX-License-Identifier: GPL-2.0
/*
 * udpflood SRC DST DPORT COUNT: sends COUNT UDP datagrams (no payload, no UDP checksum) to
 * DST:DPORT through a raw socket, each the first packet of a new flow: source ports 1024 ..
 * 65535 from SRC, then from the next address, and so on. Prints the seconds it took.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/ip.h>
#include <netinet/udp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define BATCH 64

static unsigned short csum(const void *p, int len)
{
	const unsigned short *w = p;
	unsigned long s = 0;

	for (; len > 1; len -= 2)
		s += *w++;
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return ~s;
}

int main(int argc, char **argv)
{
	struct sockaddr_in to = { .sin_family = AF_INET };
	unsigned char pkt[BATCH][28];
	struct mmsghdr msgs[BATCH];
	struct iovec iov[BATCH];
	struct timespec t0, t1;
	long count, sent = 0;
	unsigned int src, n = 0;
	int s, one = 1, i;

	if (argc != 5)
		return 2;
	src = inet_addr(argv[1]);
	to.sin_addr.s_addr = inet_addr(argv[2]);
	count = atol(argv[4]);
	s = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	if (s < 0 || setsockopt(s, IPPROTO_IP, IP_HDRINCL, &one, sizeof(one))) {
		perror("raw socket");
		return 1;
	}
	memset(msgs, 0, sizeof(msgs));
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (sent < count) {
		int k = count - sent < BATCH ? count - sent : BATCH;

		for (i = 0; i < k; i++, n++) {
			struct iphdr *ip = (struct iphdr *)pkt[i];
			struct udphdr *udp = (struct udphdr *)(pkt[i] + 20);

			memset(pkt[i], 0, sizeof(pkt[i]));
			ip->version = 4;
			ip->ihl = 5;
			ip->tot_len = htons(28);
			ip->id = htons(n);
			ip->ttl = 64;
			ip->protocol = IPPROTO_UDP;
			/* 64512 ports per source address, then the next address. */
			ip->saddr = htonl(ntohl(src) + n / 64512);
			ip->daddr = to.sin_addr.s_addr;
			ip->check = csum(ip, 20);
			udp->source = htons(1024 + n % 64512);
			udp->dest = htons(atoi(argv[3]));
			udp->len = htons(8);
			iov[i].iov_base = pkt[i];
			iov[i].iov_len = 28;
			msgs[i].msg_hdr.msg_iov = &iov[i];
			msgs[i].msg_hdr.msg_iovlen = 1;
			msgs[i].msg_hdr.msg_name = &to;
			msgs[i].msg_hdr.msg_namelen = sizeof(to);
		}
		k = sendmmsg(s, msgs, k, 0);
		if (k <= 0) {
			perror("sendmmsg");
			return 1;
		}
		sent += k;
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%.6f\n", (t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9);
	return 0;
}
