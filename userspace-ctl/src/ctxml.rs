// SPDX-License-Identifier: GPL-2.0

//! `conntrack -o xml`: flows as libnetfilter_conntrack's `nfct_snprintf()` prints them with
//! `NFCT_O_XML` (src/conntrack/snprintf_xml.c, unchanged from 1.0.9, the library of
//! conntrack-tools 1.4.7), in the frame conntrack-tools puts around them.
//!
//! One flow is one line without white space between the elements: `<flow>` (or
//! `<flow type="new|update|destroy">` in an event), a `<meta direction="original">` and a
//! `<meta direction="reply">` with the tuple (`<layer3>` addresses, `<layer4>` ports, no
//! children for ICMP), the tuple's `<zone>` and the `<counters>`, then
//! `<meta direction="independent">` with what the kernel sent of `<state>`, `<timeout>`,
//! `<mark>`, `<zone>`, `<use>`, `<id>`, `<assured/>` and `<unreplied/>`, in that order, then
//! `<when>` (events with `-o xml,timestamp`) and `</flow>`.
//!
//! What the kernel sends, and so what is printed, is what rnfctl's text lines show: a dump
//! (`-L`) has everything; an event has no `<use>`, a `<mark>` only when the mark is not 0,
//! the counters only when the flow goes and then no timeout (ctnetlink with accounting on).
//!
//! conntrack prints [`header`] before the first flow and [`footer`] at the end only if it
//! printed the header: a listing with no flow is empty.

use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};

use rnf_engine::conntrack::status;
use rnf_engine::conntrack::tcp::TcpState;
use rnf_engine::conntrack::wire::{self as ctwire, FlowRecord};
use rnf_engine::conntrack::Tuple;

use crate::conntrack::{proto_name, VERSION_LINE};

/// What conntrack prints before the first flow: the XML declaration and `<conntrack>`, each
/// on its own line.
pub fn header() -> &'static str {
    "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<conntrack>\n"
}

/// What conntrack prints after the last flow (when it printed [`header`]).
pub fn footer() -> &'static str {
    "</conntrack>\n"
}

/// The local time an event was printed at, as `<when>` shows it: `struct tm`'s fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct When {
    /// 0-23.
    pub hour: i32,
    /// 0-59.
    pub min: i32,
    /// 0-60.
    pub sec: i32,
    /// Day of the week, 0 = Sunday.
    pub wday: i32,
    /// Day of the month, 1-31.
    pub mday: i32,
    /// Month, 0-11.
    pub mon: i32,
    /// Years since 1900.
    pub year: i32,
}

impl When {
    /// Now, in the local time zone (`localtime_r(time())`, as conntrack).
    pub fn now() -> Option<When> {
        // SAFETY: time() with a null pointer only returns; localtime_r() writes the zeroed
        // `struct tm` it is given and nothing else.
        unsafe {
            let t = libc::time(std::ptr::null_mut());
            let mut tm: libc::tm = std::mem::zeroed();
            if libc::localtime_r(&t, &mut tm).is_null() {
                return None;
            }
            Some(When {
                hour: tm.tm_hour,
                min: tm.tm_min,
                sec: tm.tm_sec,
                wday: tm.tm_wday,
                mday: tm.tm_mday,
                mon: tm.tm_mon,
                year: tm.tm_year,
            })
        }
    }
}

/// `<src>` and `<dst>` in `<layer3>`, the ports (or GRE keys) in `<layer4>`.
fn tuple_xml(s: &mut String, f: &FlowRecord, dir: usize, zone: Option<u16>, counters: bool) {
    let t: &Tuple = if dir == 0 { &f.orig } else { &f.reply };
    let _ = write!(
        s,
        "<meta direction=\"{}\"><layer3 protonum=\"2\" protoname=\"ipv4\"><src>{}</src><dst>{}</dst></layer3>",
        if dir == 0 { "original" } else { "reply" },
        Ipv4Addr::from(t.src),
        Ipv4Addr::from(t.dst)
    );
    let _ = write!(s, "<layer4 protonum=\"{}\" protoname=\"{}\">", t.proto, proto_name(t.proto));
    match t.proto {
        // TCP, UDP, DCCP, SCTP, UDP-Lite.
        6 | 17 | 33 | 132 | 136 => {
            let _ = write!(s, "<sport>{}</sport><dport>{}</dport>", t.sport, t.dport);
        }
        // GRE.
        47 => {
            let _ = write!(s, "<srckey>{:#x}</srckey><dstkey>{:#x}</dstkey>", t.sport, t.dport);
        }
        // ICMP (type, code and id are not printed) and the rest.
        _ => {}
    }
    s.push_str("</layer4>");
    if let Some(z) = zone {
        let _ = write!(s, "<zone>{z}</zone>");
    }
    if counters {
        let (packets, bytes) = f.counters[dir];
        let _ = write!(s, "<counters><packets>{packets}</packets><bytes>{bytes}</bytes></counters>");
    }
    s.push_str("</meta>");
}

/// One flow as `conntrack -L -o xml` (a dump record, `f.event == 0`) or `conntrack -E -o xml`
/// prints it, without the line's newline.
pub fn flow_xml(f: &FlowRecord) -> String {
    flow_xml_when(f, None)
}

/// [`flow_xml`], with `<when>` (`conntrack -E -o xml,timestamp`).
pub fn flow_xml_when(f: &FlowRecord, when: Option<&When>) -> String {
    let event = f.event != 0;
    let destroy = f.event == ctwire::EV_DESTROY;
    let mut s = String::with_capacity(640);
    s.push_str(match f.event {
        0 => "<flow>",
        ctwire::EV_NEW => "<flow type=\"new\">",
        ctwire::EV_UPDATE => "<flow type=\"update\">",
        _ => "<flow type=\"destroy\">",
    });
    // ctnetlink's zone: CTA_ZONE when it applies to both directions, else CTA_TUPLE_ZONE in
    // the tuple of the direction it applies to; nothing for zone 0.
    let [zo, zr] = f.zone;
    let both = zo == zr && zo != 0;
    let tuple_zone = |z: u16| (z != 0 && !both).then_some(z);
    let counters = !event || destroy;
    tuple_xml(&mut s, f, 0, tuple_zone(zo), counters);
    tuple_xml(&mut s, f, 1, tuple_zone(zr), counters);
    // The status is always there, so is this element.
    s.push_str("<meta direction=\"independent\">");
    if let Some(st) = f.tcp_state {
        let _ = write!(s, "<state>{}</state>", TcpState::from_u8(st).map_or("NONE", TcpState::name));
    }
    if !destroy {
        let _ = write!(s, "<timeout>{}</timeout>", f.timeout);
    }
    if !event || f.mark != 0 {
        let _ = write!(s, "<mark>{}</mark>", f.mark);
    }
    if both {
        let _ = write!(s, "<zone>{zo}</zone>");
    }
    if !event {
        s.push_str("<use>1</use>");
    }
    let _ = write!(s, "<id>{}</id>", f.id);
    if f.status & status::ASSURED != 0 {
        s.push_str("<assured/>");
    }
    if f.status & status::SEEN_REPLY == 0 {
        s.push_str("<unreplied/>");
    }
    s.push_str("</meta>");
    if let Some(w) = when {
        let _ = write!(
            s,
            "<when><hour>{}</hour><min>{:02}</min><sec>{:02}</sec><wday>{}</wday><day>{}</day><month>{}</month><year>{}</year></when>",
            w.hour,
            w.min,
            w.sec,
            w.wday + 1,
            w.mday,
            w.mon + 1,
            1900 + w.year
        );
    }
    // The flow's helper, last (ctnetlink sends CTA_HELP for flows that have one, except in a
    // DESTROY event).
    if f.helper == rnf_engine::conntrack::table::HELPER_FTP && f.event != ctwire::EV_DESTROY {
        s.push_str("<helper>ftp</helper>");
    }
    s.push_str("</flow>");
    s
}

/// [`event_xml`] printed the header: the end of `-E` closes the document.
static EVENTS_OPEN: AtomicBool = AtomicBool::new(false);
/// Events printed, for the line conntrack ends `-E` with.
static EVENTS_SHOWN: AtomicU32 = AtomicU32::new(0);

/// One event of `conntrack -E -o xml` (`-o xml,timestamp`: with `<when>`), after the header
/// if it is the first; without the line's newline.
pub fn event_xml(f: &FlowRecord, timestamp: bool) -> String {
    let when = if timestamp { When::now() } else { None };
    let mut s = String::new();
    if !EVENTS_OPEN.swap(true, Ordering::SeqCst) {
        s.push_str(header());
    }
    s.push_str(&flow_xml_when(f, when.as_ref()));
    EVENTS_SHOWN.fetch_add(1, Ordering::SeqCst);
    s
}

/// conntrack's last line of `-E` (on standard error) in `buf`: its length.
fn events_end_line(shown: u32, buf: &mut [u8; 128]) -> usize {
    let mut digits = [0u8; 10];
    let (mut d, mut v) = (digits.len(), shown);
    loop {
        d -= 1;
        digits[d] = b'0' + (v % 10) as u8;
        v /= 10;
        if v == 0 {
            break;
        }
    }
    let mut n = 0;
    for part in [VERSION_LINE.as_bytes(), b": ", &digits[d..], b" flow events have been shown.\n"] {
        if let Some(dst) = buf.get_mut(n..n + part.len()) {
            dst.copy_from_slice(part);
            n += part.len();
        }
    }
    n
}

extern "C" fn end_events(_signal: libc::c_int) {
    let mut buf = [0u8; 128];
    let n = events_end_line(EVENTS_SHOWN.load(Ordering::SeqCst), &mut buf);
    // SAFETY: write() and _exit() are async-signal-safe; the buffers outlive the calls.
    unsafe {
        if EVENTS_OPEN.load(Ordering::SeqCst) {
            libc::write(1, footer().as_ptr().cast(), footer().len());
        }
        libc::write(2, buf.as_ptr().cast(), n);
        libc::_exit(0);
    }
}

/// As conntrack: SIGINT and SIGTERM end `-E -o xml` with the [`footer`] (when the header was
/// printed) and the count of events on standard error, exit status 0. Each event is written
/// and flushed whole, so the footer never lands inside one.
pub fn end_events_on_signal() {
    let h: extern "C" fn(libc::c_int) = end_events;
    // SAFETY: installs a handler that only calls async-signal-safe functions.
    unsafe {
        libc::signal(libc::SIGINT, h as libc::sighandler_t);
        libc::signal(libc::SIGTERM, h as libc::sighandler_t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(s: &str) -> u32 {
        u32::from(s.parse::<Ipv4Addr>().unwrap())
    }

    fn tcp_flow() -> FlowRecord {
        let orig = Tuple { src: a("10.0.1.2"), dst: a("10.0.2.2"), sport: 46380, dport: 8080, proto: 6 };
        FlowRecord {
            orig,
            reply: orig.invert().unwrap(),
            status: status::SEEN_REPLY | status::ASSURED | status::CONFIRMED,
            timeout: 119,
            tcp_state: Some(7),
            counters: [(6, 372), (4, 274)],
            id: 3_735_928_559,
            mark: 0,
            event: 0,
            zone: [0, 0],
            helper: 0,
        }
    }

    #[test]
    fn tcp_flow_as_conntrack_prints_it() {
        assert_eq!(
            flow_xml(&tcp_flow()),
            "<flow><meta direction=\"original\"><layer3 protonum=\"2\" protoname=\"ipv4\"><src>10.0.1.2</src>\
             <dst>10.0.2.2</dst></layer3><layer4 protonum=\"6\" protoname=\"tcp\"><sport>46380</sport>\
             <dport>8080</dport></layer4><counters><packets>6</packets><bytes>372</bytes></counters></meta>\
             <meta direction=\"reply\"><layer3 protonum=\"2\" protoname=\"ipv4\"><src>10.0.2.2</src>\
             <dst>10.0.1.2</dst></layer3><layer4 protonum=\"6\" protoname=\"tcp\"><sport>8080</sport>\
             <dport>46380</dport></layer4><counters><packets>4</packets><bytes>274</bytes></counters></meta>\
             <meta direction=\"independent\"><state>TIME_WAIT</state><timeout>119</timeout><mark>0</mark>\
             <use>1</use><id>3735928559</id><assured/></meta></flow>"
        );
    }

    #[test]
    fn icmp_and_udp_unreplied_with_a_mark() {
        let icmp = Tuple { src: a("10.0.1.2"), dst: a("10.0.2.2"), sport: 7, dport: 0x0800, proto: 1 };
        let f = FlowRecord {
            orig: icmp,
            reply: icmp.invert().unwrap(),
            status: status::CONFIRMED,
            timeout: 29,
            tcp_state: None,
            counters: [(1, 84), (0, 0)],
            id: 2,
            mark: 0x10,
            event: 0,
            zone: [0, 0],
            helper: 0,
        };
        assert_eq!(
            flow_xml(&f),
            "<flow><meta direction=\"original\"><layer3 protonum=\"2\" protoname=\"ipv4\"><src>10.0.1.2</src>\
             <dst>10.0.2.2</dst></layer3><layer4 protonum=\"1\" protoname=\"icmp\"></layer4><counters>\
             <packets>1</packets><bytes>84</bytes></counters></meta><meta direction=\"reply\"><layer3 \
             protonum=\"2\" protoname=\"ipv4\"><src>10.0.2.2</src><dst>10.0.1.2</dst></layer3><layer4 \
             protonum=\"1\" protoname=\"icmp\"></layer4><counters><packets>0</packets><bytes>0</bytes>\
             </counters></meta><meta direction=\"independent\"><timeout>29</timeout><mark>16</mark>\
             <use>1</use><id>2</id><unreplied/></meta></flow>"
        );
        let udp = Tuple { src: a("10.0.1.2"), dst: a("10.0.2.2"), sport: 40000, dport: 5353, proto: 17 };
        let u = FlowRecord { orig: udp, reply: udp.invert().unwrap(), status: status::SEEN_REPLY, mark: 0, ..f };
        let x = flow_xml(&u);
        assert!(x.contains("<layer4 protonum=\"17\" protoname=\"udp\"><sport>40000</sport><dport>5353</dport></layer4>"), "{x}");
        assert!(x.ends_with("<timeout>29</timeout><mark>0</mark><use>1</use><id>2</id></meta></flow>"), "{x}");
    }

    #[test]
    fn other_protocols() {
        let gre = Tuple { src: a("10.0.1.2"), dst: a("10.0.2.2"), sport: 0, dport: 0x1f, proto: 47 };
        let f = FlowRecord { orig: gre, reply: gre, tcp_state: None, ..tcp_flow() };
        assert!(flow_xml(&f).contains("<layer4 protonum=\"47\" protoname=\"unknown\"><srckey>0x0</srckey><dstkey>0x1f</dstkey></layer4>"));
        let raw = Tuple { proto: 89, ..gre };
        let f = FlowRecord { orig: raw, reply: raw, tcp_state: Some(200), ..tcp_flow() };
        let x = flow_xml(&f);
        assert!(x.contains("<layer4 protonum=\"89\" protoname=\"unknown\"></layer4>"), "{x}");
        // A TCP state out of range: NONE, as libnetfilter_conntrack.
        assert!(x.contains("<state>NONE</state>"), "{x}");
    }

    #[test]
    fn zones() {
        let f = tcp_flow();
        // The same zone both ways: CTA_ZONE, in the independent part between mark and use.
        let x = flow_xml(&FlowRecord { zone: [7, 7], ..f });
        assert!(x.contains("<mark>0</mark><zone>7</zone><use>1</use>"), "{x}");
        assert_eq!(x.matches("<zone>").count(), 1);
        // One direction's: CTA_TUPLE_ZONE, in that tuple between layer4 and the counters.
        let x = flow_xml(&FlowRecord { zone: [5, 0], ..f });
        assert!(x.contains("<dport>8080</dport></layer4><zone>5</zone><counters>"), "{x}");
        assert_eq!(x.matches("<zone>").count(), 1);
        let x = flow_xml(&FlowRecord { zone: [0, 65535], ..f });
        assert!(x.contains("<dport>46380</dport></layer4><zone>65535</zone><counters>"), "{x}");
        assert_eq!(x.matches("<zone>").count(), 1);
        assert!(!flow_xml(&f).contains("<zone>"));
    }

    #[test]
    fn events() {
        let f = tcp_flow();
        let new = FlowRecord {
            event: ctwire::EV_NEW,
            status: status::CONFIRMED,
            tcp_state: Some(1),
            timeout: 120,
            counters: [(1, 60), (0, 0)],
            ..f
        };
        assert_eq!(
            flow_xml(&new),
            "<flow type=\"new\"><meta direction=\"original\"><layer3 protonum=\"2\" protoname=\"ipv4\">\
             <src>10.0.1.2</src><dst>10.0.2.2</dst></layer3><layer4 protonum=\"6\" protoname=\"tcp\">\
             <sport>46380</sport><dport>8080</dport></layer4></meta><meta direction=\"reply\"><layer3 \
             protonum=\"2\" protoname=\"ipv4\"><src>10.0.2.2</src><dst>10.0.1.2</dst></layer3><layer4 \
             protonum=\"6\" protoname=\"tcp\"><sport>8080</sport><dport>46380</dport></layer4></meta>\
             <meta direction=\"independent\"><state>SYN_SENT</state><timeout>120</timeout>\
             <id>3735928559</id><unreplied/></meta></flow>"
        );
        let x = flow_xml(&FlowRecord { event: ctwire::EV_UPDATE, mark: 3, ..f });
        assert!(x.starts_with("<flow type=\"update\">"), "{x}");
        assert!(x.contains("<timeout>119</timeout><mark>3</mark><id>"), "{x}");
        assert!(!x.contains("<counters>") && !x.contains("<use>"), "{x}");
        let x = flow_xml(&FlowRecord { event: ctwire::EV_DESTROY, ..f });
        assert!(x.starts_with("<flow type=\"destroy\">"), "{x}");
        assert!(x.contains("<counters><packets>4</packets><bytes>274</bytes></counters>"), "{x}");
        assert!(x.contains("<meta direction=\"independent\"><state>TIME_WAIT</state><id>3735928559</id><assured/></meta>"), "{x}");
    }

    #[test]
    fn when_and_frame() {
        let w = When { hour: 9, min: 5, sec: 7, wday: 0, mday: 31, mon: 11, year: 125 };
        let x = flow_xml_when(&FlowRecord { event: ctwire::EV_NEW, ..tcp_flow() }, Some(&w));
        assert!(
            x.ends_with(
                "</meta><when><hour>9</hour><min>05</min><sec>07</sec><wday>1</wday><day>31</day>\
                 <month>12</month><year>2025</year></when></flow>"
            ),
            "{x}"
        );
        assert!(When::now().is_some());
        let first = event_xml(&FlowRecord { event: ctwire::EV_NEW, ..tcp_flow() }, false);
        assert_eq!(first.strip_prefix(header()), Some(flow_xml(&FlowRecord { event: ctwire::EV_NEW, ..tcp_flow() }).as_str()));
        let next = event_xml(&FlowRecord { event: ctwire::EV_UPDATE, ..tcp_flow() }, true);
        assert!(next.starts_with("<flow type=\"update\">") && next.contains("</meta><when><hour>"), "{next}");
        let mut buf = [0u8; 128];
        let n = events_end_line(EVENTS_SHOWN.load(Ordering::SeqCst), &mut buf);
        assert_eq!(&buf[..n], b"conntrack v1.4.7 (conntrack-tools): 2 flow events have been shown.\n");
        let n = events_end_line(4_294_967_295, &mut buf);
        assert_eq!(&buf[..n], b"conntrack v1.4.7 (conntrack-tools): 4294967295 flow events have been shown.\n");
        assert_eq!(header(), "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<conntrack>\n");
        assert_eq!(footer(), "</conntrack>\n");
    }
}
